"""Faces, in parts named for what they do, each importing only the parts before it:

``dlib_models`` (dlib's detectors, landmarks and descriptor, loaded lazily) → ``align`` (detect → 5 points → warp
onto one 112 px template) → ``reference`` (dlib's ResNet descriptor, the model to beat) → ``data`` (FIW and CelebA
aligned and cached, validation identities, LFW exclusions) → ``overlap`` (which training identities are LFW people)
→ ``verify`` (a model and its calibrated operating point: the verdict) → ``evaluate`` (calibration on validation
identities, LFW and ORL). ``augment`` holds the batched training augmentation.

Nothing is imported here, so ``import arcdemo.faces.align`` costs numpy and Pillow, not torch.
"""
