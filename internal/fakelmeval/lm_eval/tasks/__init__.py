"""FAKE lm_eval.tasks (llem tests): TaskManager over a few real task configs."""

# dataset_path / dataset_name as lm-eval's task YAMLs give them
# (lm_eval/tasks/hellaswag/hellaswag.yaml, arc/arc_easy.yaml, ...).
TASKS = {
    "hellaswag": {"dataset_path": "Rowan/hellaswag", "dataset_name": None},
    "arc_easy": {"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Easy"},
    "arc_challenge": {"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge"},
    "mmlu_abstract_algebra": {"dataset_path": "hails/mmlu_no_train", "dataset_name": "abstract_algebra"},
    "lambada_openai": {"dataset_path": "EleutherAI/lambada_openai", "dataset_name": "default"},
    "wikitext": {"dataset_path": "EleutherAI/wikitext_document_level", "dataset_name": "wikitext-2-raw-v1"},
    "gsm8k": {"dataset_path": "gsm8k", "dataset_name": "main"},
}


class TaskManager:
    def __init__(self, *args, **kwargs):
        self._all = sorted(TASKS)

    @property
    def all_tasks(self):
        return self._all

    def _get_config(self, name):
        cfg = {"task": name}
        cfg.update(TASKS[name])
        return cfg

    def match_tasks(self, names):
        return [n for n in names if n in TASKS]
