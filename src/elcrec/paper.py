"""Published numbers the benchmarks compare against (ELCRec paper, NeurIPS 2024).

Table 1 (test, full ranking, leave-one-out) for the models this package
implements, the ablation sums of HR@5+HR@20+NDCG@5+NDCG@20 (docs/method.md,
"Ablation"), and the training times and memory of Table 2 (one RTX 4090).
"""

from __future__ import annotations

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")

# Table 1, the models this package implements: dataset, model, then HR@5,
# HR@20, NDCG@5, NDCG@20.
_TABLE1_TEXT = """
Sports_and_Outdoors  SASRec   0.0206 0.0497 0.0135 0.0216
Sports_and_Outdoors  CL4SRec  0.0217 0.0540 0.0137 0.0227
Sports_and_Outdoors  ICLRec   0.0263 0.0630 0.0173 0.0276
Sports_and_Outdoors  ELCRec   0.0286 0.0648 0.0185 0.0286
Beauty               SASRec   0.0374 0.0901 0.0241 0.0387
Beauty               CL4SRec  0.0423 0.0994 0.0281 0.0441
Beauty               ICLRec   0.0495 0.1072 0.0326 0.0491
Beauty               ELCRec   0.0529 0.1079 0.0355 0.0509
Toys_and_Games       SASRec   0.0463 0.0941 0.0306 0.0441
Toys_and_Games       CL4SRec  0.0526 0.1038 0.0362 0.0506
Toys_and_Games       ICLRec   0.0586 0.1130 0.0397 0.0550
Toys_and_Games       ELCRec   0.0585 0.1138 0.0403 0.0560
Yelp                 SASRec   0.0160 0.0443 0.0101 0.0179
Yelp                 CL4SRec  0.0229 0.0630 0.0144 0.0256
Yelp                 ICLRec   0.0233 0.0645 0.0146 0.0261
Yelp                 ELCRec   0.0236 0.0653 0.0150 0.0266
"""
# dataset file stem -> model -> (HR@5, HR@20, NDCG@5, NDCG@20)
TABLE1: dict[str, dict[str, tuple[float, ...]]] = {}
for _line in _TABLE1_TEXT.strip().splitlines():
    _dataset, _model, *_values = _line.split()
    TABLE1.setdefault(_dataset, {})[_model] = tuple(float(v) for v in _values)

# Ablation sums: dataset -> variant (B = backbone) -> sum of the four metrics.
ABLATION = {
    "Sports_and_Outdoors": {"B": 0.1343, "B+ICL": 0.1379, "B+ELCM": 0.1396, "ELCRec": 0.1405},
    "Beauty": {"B": 0.2390, "B+ICL": 0.2398, "B+ELCM": 0.2432, "ELCRec": 0.2473},
    "Toys_and_Games": {"B": 0.2664, "B+ICL": 0.2675, "B+ELCM": 0.2718, "ELCRec": 0.2686},
    "Yelp": {"B": 0.1258, "B+ICL": 0.1262, "B+ELCM": 0.1285, "ELCRec": 0.1305},
}

# Table 2: training wall time (s) and GPU memory (MB), same number of epochs.
TABLE2 = {
    "Sports_and_Outdoors": {"ICLRec": (5282, 1944), "ELCRec": (5360, 1781)},
    "Beauty": {"ICLRec": (3770, 1798), "ELCRec": (2922, 1594)},
    "Toys_and_Games": {"ICLRec": (4374, 2887), "ELCRec": (4124, 2555)},
    "Yelp": {"ICLRec": (4412, 3671), "ELCRec": (4151, 3383)},
}


def paper_metric(model: str, dataset: str, metric: str) -> float | None:
    row = TABLE1.get(dataset, {}).get(model)
    return None if row is None else row[METRICS.index(metric)]
