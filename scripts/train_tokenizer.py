"""Train an EventTokenizer (the same as ``treasure train-tokenizer``; every option of that command).

python scripts/train_tokenizer.py --data zjets.pcdf --method rvq --codebook-size 1024 --stages 3 --out tok/
accelerate launch --mixed_precision bf16 scripts/train_tokenizer.py --data mix.h5 --steps 3000 --out tok/
"""

import sys

from treasure_hf.cli import main

if __name__ == "__main__":
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
    sys.exit(main(["train-tokenizer", *sys.argv[1:]]))
