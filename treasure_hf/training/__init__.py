"""Training event transformers: masked-event-modeling pretraining with Accelerate
(:mod:`.pretrain`) and classification fine-tuning with the transformers ``Trainer``
(:mod:`.finetune`). Both read tokenized data sets written by ``treasure tokenize``."""
