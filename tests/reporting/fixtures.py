"""Hand-made run folders: log.txt in the reference's format (docs/reference-behaviour.md, "Log file and result block") and metrics.json in ours."""

import json
import os

_HEADER = """***************
** Arguments **
***************
backbone: 
config_file: configs/trainers/CoOp/rn50.yaml
dataset_config_file: configs/datasets/caltech101.yaml
eval_only: {eval_only}
output_dir: {output_dir}
seed: 1
************
** Config **
************
DATASET:
  NAME: Caltech101
  NUM_SHOTS: 16
OPTIM:
  MAX_EPOCH: 2
Collecting env info ...
** System info **
PyTorch version: 1.8.1
Loading trainer: CoOp
Loading dataset: Caltech101
Reading split from /data/caltech-101/split_zhou_Caltech101.json
Building transform_test
+ resize the smaller edge to 224
+ 224x224 center crop
Loading CLIP (backbone: RN50)
Building custom CLIP
Initial context: "X X X X X X X X X X X X X X X X"
Number of context words (tokens): 16
Turning off gradients in both the image and the text encoder
Loading evaluator: Classification
"""

_TRAINING = """No checkpoint found, train from scratch
Initialize tensorboard (log_dir={output_dir}/tensorboard)
epoch [1/2] batch [5/6] time 0.634 (0.823) data 0.000 (0.190) loss 2.7598 (2.6148) acc 40.6250 (34.3750) lr 1.0000e-05 eta 0:00:12
epoch [2/2] batch [5/6] time 0.634 (0.823) data 0.000 (0.190) loss 1.7598 (1.6148) acc 60.6250 (54.3750) lr 2.0000e-03 eta 0:00:01
Evaluate on the *val* set
=> result
* total: 400
* correct: 200
* accuracy: 50.0%
* error: 50.0%
* macro_f1: 45.0%
Checkpoint saved to {output_dir}/prompt_learner/model.pth.tar-2
{end_signal}
Deploy the last-epoch model
"""

_EVAL = 'Loading weights to prompt_learner from "/m/prompt_learner/model.pth.tar-2" (epoch = 2)\n'

_RESULT = """Evaluate on the *test* set
=> result
* total: 2,465
* correct: {correct:,}
* accuracy: {accuracy}%
* error: {error}%
* macro_f1: {macro_f1}%
"""


def reference_log(folder, accuracy, macro_f1=80.0, eval_only=False, end_signal="Finish training"):
    """Write folder/log.txt as the original code prints it; accuracy is the final test result."""
    os.makedirs(folder, exist_ok=True)
    text = _HEADER + (_EVAL if eval_only else _TRAINING) + _RESULT + "Elapsed: 0:12:34\n"
    with open(os.path.join(folder, "log.txt"), "w") as f:
        f.write(
            text.format(
                output_dir=folder,
                eval_only=eval_only,
                end_signal=end_signal,
                accuracy=accuracy,
                error=round(100 - accuracy, 1),
                macro_f1=macro_f1,
                correct=round(2465 * accuracy / 100),
            )
        )


def metrics_json(folder, accuracy, finished=True, macro_f1=None, **run):
    """Write folder/metrics.json in the engine's format (version 1)."""
    os.makedirs(folder, exist_ok=True)
    data = {
        "version": 1,
        "split": "test",
        "metrics": {
            "accuracy": accuracy,
            "error_rate": 100 - accuracy,
            "macro_f1": accuracy - 1 if macro_f1 is None else macro_f1,
            "total": 1000,
            "correct": round(10 * accuracy),
        },
        "run": dict(
            dict(
                trainer="CoCoOp",
                dataset="OxfordPets",
                backbone="ViT-B/16",
                seed=1,
                num_shots=16,
                subsample_classes="all",
                max_epoch=10,
                epoch=None,
                eval_only=False,
            ),
            **run,
        ),
        "finished": finished,
    }
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(data, f, indent=4)
