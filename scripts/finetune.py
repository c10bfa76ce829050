"""Fine-tune an event classifier with the transformers Trainer (the same as ``treasure finetune``).

python scripts/finetune.py --data tokenized/ --model mem/ --out clf/ --max-steps 2000 --eval-steps 200
accelerate launch --num_processes 4 scripts/finetune.py ...      # the Trainer runs data parallel
"""

import sys

from treasure_hf.training.arguments import FinetuneArguments, script_main
from treasure_hf.training.finetune import finetune

if __name__ == "__main__":
    sys.exit(script_main(FinetuneArguments, finetune, __doc__))
