"""Peer methods timed beside PoseDet (``posedet bench``), each a plain module with ``build``,
a decode and an adapter to COCO results:

* ``keypoint_rcnn``  torchvision Keypoint R-CNN R50-FPN (top-down in one network);
* ``higherhrnet``    a HigherHRNet-style bottom-up network on the timm HRNet backbones, with the
                     associative-embedding grouping (scipy's Hungarian matching);
* ``yolo_pose``      Ultralytics YOLO11n/s-pose (optional: the ``peers`` extra);
* ``backbone``       a bare backbone (the floor);
* ``yolo_train``     YOLO11n-pose *trained* beside PoseDet on the same data and images budget
                     (``posedet peer-train`` / ``peer-predict``; workflow/rules/peers.smk).

Random weights: the network time does not depend on them; the benchmark builds the inputs of
the candidate-dependent stages so that their candidate counts match the people on the image.
This package imports nothing from ``posedet.bench`` (the benchmark is the higher layer).
"""
