"""Linear probes of projected small backbones on digits-cls: which start holds class information, and where.

    .venv/bin/python bench/methods_probe.py          # about 2 minutes; uses runs/methods/pretrain (bench/methods.py)

Diagnostic for bench/results/methods.md (Findings). Logistic regression (C=1, standardised) on the frozen
backbone's hidden states of the 200 training rows of ``digits-cls`` (seed 0 subset), accuracy on the val half
of the eval split; two poolings: mean over positions and the last token (what the HF-style classifier pools).
LM backbones are projected for ``digits:7`` (any digits LM task: only the backbone is probed).
"""

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from projdeploy.models.checkpoint import load_model
from projdeploy.project.api import project_model
from projdeploy.tasks import get_task
from projdeploy.train.finetune import split_eval
from projdeploy.transfer.features import teacher_inputs


def main(runs: str = "runs/methods/pretrain/"):
    torch.set_num_threads(1)
    task = get_task("digits-cls").with_train_limit(200, seed=0)
    val = split_eval(task, "val").eval
    lm_task = get_task("digits:7")
    models = {
        "slm": load_model(runs + "slm"),
        "pn": project_model(runs + "pn", lm_task, "pn")[0],
        "hard-moe": project_model(runs + "hard-moe", lm_task, "pn")[0],
        "truncate": project_model(runs + "dense", lm_task, "truncate")[0],
        "projector": project_model(runs + "projector", lm_task, "projector")[0],
        "projector-s400": project_model(runs + "projector-s400", lm_task, "projector")[0],
    }
    print("| backbone | mean-pool val acc | last-token val acc |\n|---|---|---|")
    for name, m in models.items():
        m.eval()
        accs = []
        for pool in ("mean", "last"):

            def feats(toks, m=m, pool=pool):
                with torch.no_grad():
                    h = m.model(torch.as_tensor(teacher_inputs(m, task, toks)))
                return (h.mean(1) if pool == "mean" else h[:, -1]).numpy()

            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
            clf.fit(feats(task.train.tokens), task.train.labels)
            accs.append(clf.score(feats(val.tokens), val.labels))
        print(f"| {name} | {accs[0]:.3f} | {accs[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
