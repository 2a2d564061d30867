import json
from pathlib import Path

import numpy as np
import pytest

from posedet.data.crowd_index import (annotation_stats, crowd_index, crowd_indices, crowd_level)

CROWDPOSE_VAL = Path(__file__).resolve().parents[1].parent / "shared/data/crowdpose/crowdpose_val.json"


def _ann(points, bbox, image_id=1, area=None):
    """points: list of (x, y, v)."""
    a = {"image_id": image_id, "keypoints": [c for p in points for c in p], "bbox": list(bbox),
         "num_keypoints": sum(p[2] > 0 for p in points)}
    if area is not None:
        a["area"] = area
    return a


def test_two_person_example():
    # A: 4 labelled joints, box [0, 10] x [0, 10]. B: 2 labelled (+1 unlabelled), box [8, 20] x [0, 10].
    a = _ann([(1, 1, 2), (9, 5, 2), (10, 10, 1), (5, 5, 2), (0, 0, 0)], (0, 0, 10, 10))
    b = _ann([(9, 9, 2), (30, 30, 1), (9.5, 0, 0), (0, 0, 0), (0, 0, 0)], (8, 0, 12, 10))
    # N_b(A): B's labelled joints inside A's box: (9, 9) -> 1 (the unlabelled one does not count);
    # (30, 30) outside.  N_b(B): A's joints inside B's box: (9, 5), (10, 10) (border) -> 2.
    expected = (1 / 4 + 2 / 2) / 2
    assert crowd_index([a, b]) == pytest.approx(expected)
    assert crowd_level(expected) == "medium"


def test_edge_cases_and_levels():
    assert crowd_index([]) == 0.0
    lone = _ann([(1, 1, 2), (2, 2, 1)], (0, 0, 5, 5))
    assert crowd_index([lone]) == 0.0
    # A person without labelled joints is not one of the n persons.
    empty = _ann([(0, 0, 0), (0, 0, 0)], (0, 0, 5, 5))
    other = _ann([(3, 3, 2), (4, 4, 2)], (2, 2, 5, 5))
    assert crowd_index([lone, empty]) == 0.0
    # lone's box holds both of other's joints (2/2); other's box holds lone's (2, 2) (1/2).
    assert crowd_index([lone, other]) == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert [crowd_level(x) for x in (0.0, 0.1999, 0.2, 0.7999, 0.8, 3.0)] == \
        ["easy", "easy", "medium", "medium", "hard", "hard"]


def test_annotation_stats_counts():
    coco = {
        "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100},
                   {"id": 3, "width": 100, "height": 100}],
        "annotations": [
            _ann([(1, 1, 2), (9, 5, 2), (10, 10, 1), (5, 5, 2)], (0, 0, 10, 10), 1, area=500),
            _ann([(9, 9, 2), (30, 30, 1), (9.5, 0, 0), (0, 0, 0)], (8, 0, 12, 10), 1, area=2000),
            _ann([(50, 50, 1), (60, 60, 2), (0, 0, 0), (0, 0, 0)], (40, 40, 60, 60), 2, area=10000),
        ],
    }
    st = annotation_stats(coco)
    assert st["num_images"] == 3 and st["num_persons"] == 3
    assert st["persons_per_image_mean"] == pytest.approx(1.0)
    assert st["crowd_index"]["levels"] == {"easy": 2, "medium": 1, "hard": 0}   # image 3 has nobody: 0
    assert sum(st["crowd_index"]["hist"].values()) == 3
    assert st["keypoints"]["labelled"] == 8 and st["keypoints"]["occluded_v1"] == 3
    assert st["keypoints"]["occlusion_rate"] == pytest.approx(3 / 8, abs=1e-4)
    assert (st["area"]["small"], st["area"]["medium"], st["area"]["large"]) == (1, 1, 1)
    # Without `area`, CrowdPose's box w*h*0.53 is used.
    for a in coco["annotations"]:
        del a["area"]
    st = annotation_stats(coco)
    assert st["area"]["source"].startswith("bbox")
    assert (st["area"]["small"], st["area"]["medium"], st["area"]["large"]) == (2, 1, 0)
    json.dumps(st)  # serialisable


@pytest.mark.skipif(not CROWDPOSE_VAL.exists(), reason=f"{CROWDPOSE_VAL} not present")
def test_reproduces_stored_crowd_index_on_real_file():
    coco = json.loads(CROWDPOSE_VAL.read_text())
    ours = crowd_indices(coco)
    stored = {im["id"]: im["crowdIndex"] for im in coco["images"]}
    agree = np.mean([abs(ours[i] - stored[i]) <= 0.01 for i in stored])
    assert len(stored) == 2000
    assert agree >= 0.70, agree
    st = annotation_stats(coco)
    assert st["num_persons"] == 8527
    assert sum(st["crowd_index_stored"]["levels"].values()) == 2000
