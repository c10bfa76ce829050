"""Masked-event-modeling pretraining with Accelerate (the same as ``treasure pretrain``).

accelerate launch --num_processes 4 scripts/pretrain.py --data tokenized/ --out mem/ --max-steps 10000
accelerate launch --cpu --num_processes 1 scripts/pretrain.py --data tokenized/ --out mem/ --max-steps 20
python scripts/pretrain.py ... --resume        # continues from mem/checkpoints/step-N
"""

import sys

from treasure_hf.training.arguments import PretrainArguments, script_main
from treasure_hf.training.pretrain import pretrain

if __name__ == "__main__":
    sys.exit(script_main(PretrainArguments, pretrain, __doc__))
