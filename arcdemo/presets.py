"""Named training recipes: ``python -m arcdemo train --preset NAME`` rebuilds ``checkpoints/NAME`` (into ``runs/NAME``).

Each preset is a set of ``TrainConfig`` overrides; the card of the checkpoint it produced records the preset name,
so every shipped number traces back to one command.
"""

from __future__ import annotations

from dataclasses import replace

from arcdemo.train import TrainConfig

_MNIST_SPHERE = dict(dataset="mnist", dim=3, epochs=8, augment=True, seed=0)
_CIFAR = dict(dataset="cifar10", width=64, epochs=40, amp=True, augment=True, flip_tta=True, shift_tta=True, seed=0)

# Faces: MobileFaceNet (width 32, 128-D as in its paper) on FIW "train" (2,037 identities, 10,471 faces; 81 steps
# of 128 per epoch), evaluated on the held-out FIW families each epoch and on LFW + ORL at the end (card threshold).
# SGD one-cycle at 0.1, weight decay 5e-4 (insightface's recipe); s = 32 (C = 2,037 needs s > ln(9·C) ~ 10 for
# p = 0.9; 64 is for ~85k classes) with the margin ramped in over the first 2 epochs, so a from-scratch ArcFace
# escapes the all-wrong start. Input 64 px (resized from the 112 px alignment) for the loss comparison; ArcFace at
# 64 / 96 / 112 px reached 81.3 / 83.2 / 83.2% pair accuracy on the held-out FIW families (43 / 55 / 76 s an epoch
# here), and 112 px, the alignment's own size, was kept for the shipped ArcFace model. Its schedule doubled to 50
# epochs (71 min here): held-out pair accuracy 83.2% → 84.4%, still rising through the last epochs of the 25-epoch run.
_FACES = dict(dataset="fiw", dim=128, image_size=64, epochs=25, batch_size=128, optimizer="sgd", lr=0.1,
              weight_decay=5e-4, augment=True, flip_tta=True, margin_warmup_steps=162, sample_every=0, seed=0)
# More people: the same network and augmentation on FIW + CelebA (their training identities less those matched to
# LFW people: 39.5k faces of ~7,400 people, 309 steps of 128 an epoch) at 96 px, which tied 112 px on the held-out
# FIW families above at 28% less time a step (605 s an epoch on the day it started here); 24 epochs of SGD
# one-cycle, the margin ramped in over the first 2 epochs. s = 32 still clears the bound for ~7,400 classes
# (ln(9·C) ~ 11). "faces-arcface-fiw" is the same recipe on FIW alone (same exclusions), so the effect of the added
# people is measured, not assumed.
_FACES_LARGE = dict(_FACES, dataset="fiw+celeba", image_size=96, epochs=24, margin_warmup_steps=672)
# The fine-tunes after it (runs 3-5 below): 112 px, 8 epochs to a peak rate of 0.02, the whole margin from step 1.
_FACES_112_FINETUNE = dict(_FACES_LARGE, image_size=112, epochs=8, lr=0.02, margin_warmup_steps=0)
# Continuing a finished face model (runs 7-11 below): ArcFace, 4 epochs to a peak rate of 0.01, dropout 0.6.
_FACES_CONTINUE = dict(_FACES_112_FINETUNE, loss="arcface", margin=0.5, scale=32.0, epochs=4, lr=0.01, dropout=0.6)

PRESETS: dict[str, TrainConfig] = {
    **{
        f"mnist-{loss}-3d": TrainConfig(loss=loss, **_MNIST_SPHERE)
        for loss in ("softmax", "normface", "sphereface", "cosface", "arcface")
    },
    # The accuracy model: width 32 (width 16 reached 99.63%), bf16 autocast, and the image with its 1-px shifted
    # views at test time (reflected border; digits are not mirrored).
    "mnist-arcface-128d": TrainConfig(dataset="mnist", loss="arcface", dim=128, epochs=20, width=32, amp=True,
                                      augment=True, shift_tta=True, seed=0),
    # CIFAR-10: airbench94's network at its full width (64/256/256; 915 img/s under bf16 autocast on this 2-core
    # CPU in benchmarks/throughput.py, ~770 in the trainer), crop + flip, 40 epochs of SGD one-cycle (~44 min), and
    # at test time the image, its mirror and both moved 1 px (model.tta_views); softmax gets the same recipe, so the
    # two 512-D checkpoints compare like for like. ArcFace at its MNIST setting (m = 0.5, s = 30) collapsed to
    # chance here once the margin was in; s = 16 trains (probe, width 16, 3 epochs, test accuracy: m 0.5 s 30 20%,
    # m 0.2 s 30 15%, m 0.5 s 16 31%, m 0.3 s 16 74%, m 0.2 s 16 78%; softmax 74%). s = 16 is still far above what
    # 10 classes need (NormFace's bound: s > 0.9·ln 81 ≈ 4 for p = 0.9).
    "cifar10-arcface-512d": TrainConfig(loss="arcface", dim=512, margin=0.2, scale=16.0, margin_warmup_steps=390,
                                        **_CIFAR),
    "cifar10-softmax-512d": TrainConfig(loss="softmax", dim=512, **_CIFAR),
    # The sphere: 3-D cosine heads trained from scratch stalled on CIFAR-10 here (ArcFace 9.5% after 6 epochs at
    # width 16; NormFace 13-20%), so the 3-D model starts from the 512-D ArcFace model's features and learns a new
    # 3-D embedding layer and head, the margin ramped in over its first epoch. Flip-TTA only: the app's Explore tab
    # evaluates the sphere model's test set on first use, and 6 views cost ~3x the 2 of flip-TTA there.
    "cifar10-arcface-3d": TrainConfig(loss="arcface", dim=3, margin=0.2, scale=16.0, init_from="cifar10-arcface-512d",
                                      **{**_CIFAR, "epochs": 10, "shift_tta": False}),
    # The FIW loss comparison (before CelebA; their cards are in benchmarks/results as faces-fiw-*-card.json)
    "faces-fiw-arcface": TrainConfig(loss="arcface", margin=0.5, scale=32.0,
                                     **{**_FACES, "image_size": 112, "epochs": 50}),
    "faces-arcface-celeba-stage1": TrainConfig(loss="arcface", margin=0.5, scale=32.0, **_FACES_LARGE),
    # The face model is built in five runs, each from the one before (each writes runs/<preset>):
    # 1. stage 1 above: 24 epochs from scratch at 96 px, validation pair accuracy 90.3%;
    # 2. 8 more epochs, SGD one-cycle to a fifth of stage 1's peak rate (0.02), the whole margin from the first step:
    #    91.1% (43 min here; shipped until the 112 px runs; its card: benchmarks/results/faces-arcface-celeba-card.json,
    #    whose init_from reads "faces-arcface-celeba" because stage 1 was shipped under that name then);
    "faces-arcface-celeba": TrainConfig(loss="arcface", margin=0.5, scale=32.0,
                                        **{**_FACES_LARGE, "epochs": 8, "lr": 0.02, "margin_warmup_steps": 0,
                                           "init_from": "runs/faces-arcface-celeba-stage1"}),
    # 3. at the alignment's full 112 px (the global depthwise kernel resampled from 6×6 to 7×7), 8 epochs as stage 2:
    #    91.2%, EER 8.8% (9.4%); ~62 min of training (its card's wall time, 106 min, holds a 44-min pause for
    #    benchmarks; card: benchmarks/results/faces-arcface-celeba-112px-card.json, init_from = stage 2 when shipped);
    "faces-arcface-celeba-112px": TrainConfig(loss="arcface", margin=0.5, scale=32.0, **_FACES_112_FINETUNE,
                                              init_from="runs/faces-arcface-celeba"),
    # 4. the same 8 epochs again with 40% of the GDC features dropped before the embedding layer while training
    #    (ArcFace's BN-Dropout-FC-BN output, from its paper's small-data runs: the training batches reach 85-98%
    #    under the full margin while validation stays at 91%, so the network memorises more than it generalises):
    #    91.6%, EER 8.7%, TAR @ FAR 1% 79.0% (77.5%); 58 min here. Its card's init_from names where run 3 then lay;
    "faces-arcface-celeba-112px-dropout": TrainConfig(loss="arcface", margin=0.5, scale=32.0, **_FACES_112_FINETUNE,
                                                      dropout=0.4, init_from="runs/faces-arcface-celeba-112px"),
    # 5. 6 more epochs with the dropout at half the peak rate (0.01): 91.7%, EER 8.5%, TAR @ FAR 1% 79.3%; 44 min
    #    here (card: benchmarks/results/faces-arcface-celeba-112px-dropout-stage2-card.json);
    "faces-arcface-celeba-112px-dropout-stage2": TrainConfig(
        loss="arcface", margin=0.5, scale=32.0, **{**_FACES_112_FINETUNE, "epochs": 6, "lr": 0.01}, dropout=0.4,
        init_from="runs/faces-arcface-celeba-112px-dropout"),
    # 6. (shipped before run 8) run 4's 8 epochs again from run 5, with 60% of the GDC features dropped: 91.8%,
    #    EER 8.4%, TAR @ FAR 1% 80.5% (cohort scores, 60,000 pairs × 3: 91.83%, EER 8.32%, against run 5's 91.78%,
    #    8.51%); 50 min here.
    "faces-arcface-celeba-112px-dropout60": TrainConfig(
        loss="arcface", margin=0.5, scale=32.0, **_FACES_112_FINETUNE, dropout=0.6,
        init_from="runs/faces-arcface-celeba-112px-dropout-stage2"),
    # 7. A candidate on top of run 6: 4 epochs at a peak rate of 0.01, dropout 0.6, with the reference as a teacher
    #    (relational distillation, distill.py: the pairwise cosines of each batch pulled toward dlib's, on the 48% of
    #    training faces whose descriptor the alignment cache holds). The weight 100 puts the teacher's gradient at
    #    ~2/3 of ArcFace's on the backbone at the start (ratio of gradient norms ~150 on run 6, three batches).
    #    "continued" is the same run without the teacher, its control. Validation +0.27 pp over the control, LFW
    #    unchanged: not shipped (README, "The reference as a teacher").
    **{
        name: TrainConfig(**_FACES_CONTINUE, distill=distill, init_from="runs/faces-arcface-celeba-112px-dropout60")
        for name, distill in (("faces-arcface-continued", 0.0), ("faces-arcface-distilled", 100.0))
    },
    # 8. The continued recipe again on more photos: CelebA's own numbered photos from three more public
    #    snapshots (data_sources/celeba_more.py) beside the assembled slices, 79,579 training faces of 9,558
    #    people. Same config as "continued", other data: the card's data counts tell them apart; known people keep
    #    their class centres (checkpoints.initialise_from). 56 min here. Runs 7 and 8 started from run 6 while it
    #    was shipped, so their cards read init_from "faces-arcface".
    "faces-arcface-more-photos": TrainConfig(**_FACES_CONTINUE, init_from="runs/faces-arcface-celeba-112px-dropout60"),
    # 9. Run 8 had met the added photos for only 4 epochs (batch accuracy under the margin still ~73% at
    #    its end): the same recipe for 6 more epochs on the same data. Validation 92.39% / EER 7.89% against run 8's
    #    92.07% / 8.16% (cohort scores, 3 × 60,000 pairs); 82 min here.
    "faces-arcface-longer": TrainConfig(**{**_FACES_CONTINUE, "epochs": 6}, init_from="runs/faces-arcface-more-photos"),
    # 10. Run 9's validation still rose in its last epochs: the same recipe for 7 more epochs from run 9.
    #     Validation 92.55% / EER 7.77% against run 9's 92.39% / 7.89% (cohort scores, 3 × 60,000 pairs); 100 min here.
    "faces-arcface-longer-2": TrainConfig(**{**_FACES_CONTINUE, "epochs": 7}, init_from="runs/faces-arcface-longer"),
    # 11. (shipped) Each continuation at a peak rate of 0.01 paid less (+0.32, then +0.16 pp validation): 7 epochs
    #     from run 10 at twice that peak (0.02, as runs 3-6), so a warm-started model can move further from where the
    #     smaller set left it. Validation 92.72% / EER 7.57% against run 10's 92.55% / 7.77% (cohort scores,
    #     3 × 60,000 pairs): the same step as run 10's, not a larger one; 94 min here.
    "faces-arcface-longer-3": TrainConfig(**{**_FACES_CONTINUE, "epochs": 7, "lr": 0.02},
                                          init_from="runs/faces-arcface-longer-2"),
    # 12. The teacher again, on the larger set: run 11 plus 3 epochs at a peak rate of 0.01 with the reference's pull
    #     (weight 100, on the 28,331 training faces whose descriptor the alignment cache holds: the first three of
    #     each person), and its control, the same 3 epochs without it (same seed, so the same batches).
    **{
        name: TrainConfig(**{**_FACES_CONTINUE, "epochs": 3}, distill=distill, init_from="runs/faces-arcface-longer-3")
        for name, distill in (("faces-arcface-continued-2", 0.0), ("faces-arcface-distilled-2", 100.0))
    },
    # 13. A restart: continuations at a peak rate of 0.01-0.02 stopped moving (run 12's control: no difference on
    #     every validation pair), and a network warm-started on the smaller set may generalise worse than one the
    #     full set shaped at a high rate (Ash & Adams 2020, "On warm-starting neural network training"). Run 11 with
    #     5 epochs at a peak rate of 0.05 (half stage 1's from-scratch rate) on the same data: worse than run 11
    #     on every validation pair (TAR @ FAR 0.1% −0.51 ± 0.22 pp over 10 groups of people); 74 min here.
    "faces-arcface-restart": TrainConfig(**{**_FACES_CONTINUE, "epochs": 5, "lr": 0.05},
                                         init_from="runs/faces-arcface-longer-3"),
    # ORL's 40 people on S² for Explore and Classify: a 128→64→ReLU→3 neck and a 3-D ArcFace head on the frozen
    # shipped face model (aligned photos 1-7 train, 8-10 test), with exactly the options `python -m arcdemo train
    # --dataset orl --loss arcface` picks for 280 training images (small_data: batch 32, ~400 steps, the margin
    # ramped in over the first quarter, s = 8, AdamW at 0.02 with weight decay 0.5 for the neck).
    "orl-arcface-3d": TrainConfig(dataset="orl", loss="arcface", dim=3, batch_size=32, epochs=50,
                                  margin_warmup_steps=100, scale=8.0, optimizer="adam", lr=0.02, weight_decay=0.5,
                                  seed=0),
    "faces-arcface-fiw": TrainConfig(loss="arcface", margin=0.5, scale=32.0,
                                     **{**_FACES_LARGE, "dataset": "fiw", "margin_warmup_steps": 162}),
    "faces-fiw-cosface": TrainConfig(loss="cosface", margin=0.35, scale=32.0, **_FACES),
    "faces-fiw-softmax": TrainConfig(loss="softmax", **_FACES),
}

PRESETS["faces-arcface"] = PRESETS["faces-arcface-longer-3"]  # shipped as checkpoints/faces-arcface


def preset(name: str, **overrides: object) -> TrainConfig:
    """The named recipe, optionally with some fields overridden (e.g. another seed)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
