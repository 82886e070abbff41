"""The assets a checkpoint carries rebuild exactly what training built."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from datamodules.assets import encoder_files, materialise, tfidf_from_state, tfidf_state
from utils.pretrained import WEIGHTS_IN_CHECKPOINT, load_pretrained

TEXTS = ["the bank raised its rate", "the team won the match", "a new bank loan", "match of the year", "rate cut"]


def test_the_tfidf_vectorizer_comes_back_with_the_same_columns_and_weights():
    fitted = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, dtype=np.float32).fit(TEXTS)
    restored = tfidf_from_state(tfidf_state(fitted))
    new = ["bank match rate", "nothing known here", "the team"]
    assert (fitted.transform(new) != restored.transform(new)).nnz == 0
    assert restored.vocabulary_ == fitted.vocabulary_


def test_encoder_files_rebuild_the_tokenizer_and_a_weightless_encoder(tiny_encoder_dir, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    files = encoder_files(str(tiny_encoder_dir))
    assert "config.json" in files and "tokenizer.json" in files
    folder = materialise(files, tmp_path, "org/tiny-encoder")
    assert folder.name == "tiny-encoder" and (folder / WEIGHTS_IN_CHECKPOINT).is_file()
    assert materialise(files, tmp_path, "org/tiny-encoder") == folder  # written once
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-encoder"]  # no staging folder left
    original = load_pretrained(AutoTokenizer, str(tiny_encoder_dir))
    assert load_pretrained(AutoTokenizer, str(folder))("goal bank")["input_ids"] == original("goal bank")["input_ids"]
    model = load_pretrained(AutoModel, str(folder))
    trained = load_pretrained(AutoModel, str(tiny_encoder_dir))
    differ = {k for k, v in model.config.to_dict().items() if trained.config.to_dict().get(k) != v}
    assert differ <= {"_name_or_path"}
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in trained.state_dict().items()}
