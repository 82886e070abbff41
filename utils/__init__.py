"""General helpers with no Lightning import: files, memory, hardware, pretrained weights, CO2, process setup.

The bottom layer: every other package may import from here; nothing here imports from them.
"""
