"""Plain torch modules (no Lightning): the NVDM topic model and TopicBERT / the BERT baseline."""

from models.nvdm import NVDM, NVDMOutput
from models.topicbert import TopicBert, TopicBertOutput

__all__ = ["NVDM", "NVDMOutput", "TopicBert", "TopicBertOutput"]
