"""detforge's one-stage detector family (NanoDet-Plus / GFL / ATSS line), on torchvision ops.

model.py: MobileNetV2 -> PAN -> shared quality/distribution head; assigner.py: ATSS; loss.py: quality
focal, distribution focal and GIoU losses; postprocess.py: decoding, top-k and NMS; preprocess.py: resize,
normalise, pad; graph.py: the export graph; detector.py: the family's Detector.
"""
