"""The PoseDet network: timm backbones, FPN / HRFPN necks, the pose embedding, the head and the
assembled detector (see DESIGN.md, "PoseDet, as the paper and the authors' code define it")."""
from posedet.model.backbones import BACKBONES, SMALL_BACKBONE, PretrainedWeightsError, build_backbone
from posedet.model.detector import PoseDet, build_model
from posedet.model.embedding import PoseEmbedding, pose_embedding, pose_embedding_reference
from posedet.model.head import PoseDetHead
from posedet.model.necks import FPN, HRFPN

__all__ = ["BACKBONES", "SMALL_BACKBONE", "PretrainedWeightsError", "build_backbone", "PoseDet", "build_model",
           "PoseEmbedding", "pose_embedding", "pose_embedding_reference", "PoseDetHead", "FPN", "HRFPN"]
