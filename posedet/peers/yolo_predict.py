"""``posedet peer-predict``: COCO keypoint results of a ``posedet peer-train`` checkpoint
(the code lives in ``posedet.peers.yolo_train``)."""
from posedet.peers.yolo_train import predict_add_arguments as add_arguments
from posedet.peers.yolo_train import predict_main as main

__all__ = ["add_arguments", "main"]
