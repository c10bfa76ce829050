"""Masked-event-modeling pretraining with Accelerate (the same as ``treasure pretrain``).

    accelerate launch --num_processes 4 scripts/pretrain.py --data tokenized/ --out mem/ --max-steps 10000
    accelerate launch --cpu --num_processes 1 scripts/pretrain.py --data tokenized/ --out mem/ --max-steps 20
    python scripts/pretrain.py ... --resume        # continues from mem/checkpoints/step-N
"""

import argparse
import logging
import sys

from treasure_hf.training.arguments import PretrainArguments, add_pretrain_arguments, from_namespace
from treasure_hf.training.pretrain import pretrain

if __name__ == "__main__":
    parser = add_pretrain_arguments(argparse.ArgumentParser(description=__doc__,
                                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    args.progress = not args.quiet
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(pretrain(from_namespace(PretrainArguments, args)).out)
    sys.exit(0)
