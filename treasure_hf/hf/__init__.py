"""The Hugging Face side of treasure-hf: ``datasets`` builders and exports, tokenized data sets,
collators, dataset/model cards and ``push_to_hub``.

Import the submodules directly (``treasure_hf.hf.loading``, ``.tokenize``, ``.collators``,
``.hub``, ``.cards``); this package imports nothing heavy by itself.
"""
