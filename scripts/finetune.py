"""Fine-tune an event classifier with the transformers Trainer (the same as ``treasure finetune``).

    python scripts/finetune.py --data tokenized/ --model mem/ --out clf/ --max-steps 2000 --eval-steps 200
    accelerate launch --num_processes 4 scripts/finetune.py ...      # the Trainer runs data parallel
"""

import argparse
import logging
import sys

from treasure_hf.training.arguments import FinetuneArguments, add_finetune_arguments, from_namespace
from treasure_hf.training.finetune import finetune

if __name__ == "__main__":
    parser = add_finetune_arguments(argparse.ArgumentParser(description=__doc__,
                                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    args.progress = not args.quiet
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(finetune(from_namespace(FinetuneArguments, args)).out)
    sys.exit(0)
