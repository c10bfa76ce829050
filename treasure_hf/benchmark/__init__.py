"""The H -> ZZ* -> 4l benchmark (``treasure benchmark hzz4l``): the four-lepton selection, the
engineered observables, a BDT, every tokenization strategy's transformer, the foundation model
against scratch, and the report (JSON, Markdown, PNG)."""
