"""Faces: two photos → detected boxes, aligned crops and a verdict from our ArcFace model
with dlib's reference beside it; a per-session gallery for open-set identification ("unknown" below threshold).

A photo without a face, a file that is not an image, or a gallery mistake raises ``InputError``
with a sentence; both face models load once per process, on first use, and embed on one torch thread (a request's
share of the CPU: see ui.threads.ThreadPolicy). Photos seen recently are remembered by their pixels, with their
faces and embeddings (``RecentPhotos``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from arcdemo import catalog
from arcdemo.inputs import InputError
from arcdemo.ui.common import friendly, guard_image
from arcdemo.ui.context import Context
from arcdemo.ui.outputs import image_file
from arcdemo.ui.plots import frame
from arcdemo.ui.threads import THREADS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from arcdemo.faces.align import AlignedFace
    from arcdemo.faces.sphere import GalleryView
    from arcdemo.faces.verify import Verifier

REFERENCE_TITLE = "Reference: dlib ResNet"
REFERENCE_FACES = 3_000_000  # dlib's model card: ~3 million faces of ~7,500 people
DISPLAY_SIDE = 640  # photos are shown with their boxes at most this long side (keeps the page light)
MAX_GALLERY = 12  # people per session gallery
MAX_NAME = 40  # characters
SPHERE_HEIGHT = 560  # px of the pair and gallery spheres, as tall as the live one in Train
RECENT_PHOTOS_MB = float(os.environ.get("ARCDEMO_RECENT_PHOTOS_MB", "64"))  # 0 remembers none

Gallery = Mapping[str, dict[str, Any]]  # name → {"crop": uint8 (112, 112, 3), "<model>": unit embedding}

_lock = threading.Lock()
_verifiers: dict[str, Verifier] = {}


def title(verifier: Verifier) -> str:
    if verifier.model == "reference":
        return REFERENCE_TITLE
    return f"Ours: ArcFace, MobileFaceNet trained on {catalog.title(verifier.trained_on[0])}"


def why_they_differ(ours: Verifier) -> str:
    """The sentence beside the two verdicts, from our model's card: how much less it learned from."""
    dataset, images, identities = ours.trained_on
    return (f"dlib's reference learned from about 3 million faces of ~7,500 people; ours from {images:,} "
            f"{catalog.title(dataset)} faces of {identities:,} people, "
            f"~{REFERENCE_FACES / max(images, 1):.0f}× "
            "fewer faces, so its similarities separate people more reliably.")


def verifiers() -> tuple[list[Verifier], list[str]]:
    """Our model (when a face checkpoint is shipped) then the reference, and a note for each that cannot load."""
    from arcdemo.checkpoints import CheckpointError
    from arcdemo.faces.verify import load_verifier

    loaded, notes = [], []
    with _lock:
        for name in ("arcface", "reference"):
            if name not in _verifiers:
                try:
                    _verifiers[name] = load_verifier(name)
                except CheckpointError as error:
                    what = REFERENCE_TITLE if name == "reference" else "Our face model"
                    notes.append(f"{what} is not available: {error}")
                    continue
            loaded.append(_verifiers[name])
    if not loaded:
        raise InputError("No face model is available on this server. " + " ".join(notes))
    return loaded, notes


@dataclass(frozen=True)
class FacePhoto:
    """One uploaded photo after detection and alignment."""

    face: AlignedFace
    boxed: np.ndarray  # the photo with every detected face boxed (the one used in green), ≤ DISPLAY_SIDE
    note: str  # how many faces were found, and which one is used
    digest: str = ""  # SHA-256 of the pixels detected on: the photo's key in RecentPhotos

    @property
    def crop(self) -> np.ndarray:
        return self.face.crop


class RecentPhotos:
    """The last photos seen, by the SHA-256 of their pixels, with their detected faces and every model's embedding.

    A photo that comes again (a Space's example photos, which every visitor clicks; a face compared, then enrolled,
    then identified) skips detection, alignment and both networks, CPU that a training on the same cores gets back
    (``benchmarks/face_latency.py`` times a comparison). Bounded by the bytes of the images it holds, least
    recently used out first; its arrays are read-only because every session shares them.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[FacePhoto, dict[tuple[str, str], np.ndarray]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(photo: FacePhoto) -> int:
        return photo.face.image.nbytes + photo.boxed.nbytes + photo.crop.nbytes

    def photo(self, digest: str) -> FacePhoto | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            self._entries.move_to_end(digest)
            return entry[0]

    def remember(self, photo: FacePhoto) -> None:
        size = self._size(photo)
        if size > self.max_bytes:
            return
        for array in (photo.face.image, photo.face.crop, photo.boxed):
            array.setflags(write=False)
        with self._lock:
            if photo.digest in self._entries:
                return
            self._entries[photo.digest] = (photo, {})
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (dropped, _) = self._entries.popitem(last=False)
                self._bytes -= self._size(dropped)

    def embedding(self, model: Verifier, photo: FacePhoto) -> np.ndarray:
        """``model``'s unit embedding of the photo's face, computed once per photo and model."""
        key = (model.model, model.source)
        with self._lock:
            entry = self._entries.get(photo.digest)
            if entry is not None and key in entry[1]:
                return entry[1][key]
        vector = model.embed(photo.face)
        vector.setflags(write=False)
        with self._lock:
            entry = self._entries.get(photo.digest)
            if entry is not None:
                entry[1][key] = vector
        return vector


RECENT_PHOTOS = RecentPhotos(int(RECENT_PHOTOS_MB * 2**20))


def face_photo(source: Any, which: str = "The photo") -> FacePhoto:
    """Detect the largest face, align it to the template, box every face found; errors name the photo."""
    from PIL import Image

    from arcdemo.faces.align import NoFaceError, align_face, draw_boxes, load_photo

    if source is None:
        raise InputError(f"{which} is missing: upload a photo with a face.")
    try:
        rgb = load_photo(source)
        digest = hashlib.sha256(np.ascontiguousarray(rgb).data).hexdigest() + f"-{rgb.shape[0]}x{rgb.shape[1]}"
        known = RECENT_PHOTOS.photo(digest)
        if known is not None:
            return known
        face = align_face(rgb)
    except NoFaceError as error:
        raise InputError(f"{which}: {error}.") from None
    except (FileNotFoundError, ValueError) as error:
        raise InputError(f"{which}: {error}") from None
    boxed = Image.fromarray(draw_boxes(face.image, list(face.boxes), chosen=0))
    boxed.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    found = face.faces_found
    note = "1 face found" if found == 1 else f"{found} faces found: the largest (green) is used"
    if face.turn:
        note += f", with the photo turned {face.turn}° clockwise"
    photo = FacePhoto(face, np.asarray(boxed), note, digest)
    RECENT_PHOTOS.remember(photo)
    return photo


@dataclass(frozen=True)
class FaceComparison:
    """Two photos and every available model's verdict on them (ours first)."""

    photos: tuple[FacePhoto, FacePhoto]
    verdicts: list[dict]  # Verifier.verdict dicts
    notes: list[str]
    models: list[Verifier]
    embeddings: list[tuple[np.ndarray, np.ndarray]]  # each model's two unit embeddings

    def sphere(self, index: int = 0) -> go.Figure:
        """The ``index``-th model's verdict on the sphere: the second face inside the cap around the first ⇔ "same
        person", on the ring ⇔ "uncertain"."""
        from arcdemo.viz.face_figures import pair_sphere_figure

        model = self.models[index]
        view = model.pair_view(*self.embeddings[index])
        return pair_sphere_figure(view, crops=(self.photos[0].crop, self.photos[1].crop),
                                  labels=("first", "second"), title=title(model))

    def result(self) -> dict:
        """``/verify_faces``'s JSON: the first model's verdict at the top level, every model's under ``models``."""
        return {**self.verdicts[0], "models": self.verdicts}

    def summary(self) -> str:
        lines = [_verdict_markdown(v, title(m)) for v, m in zip(self.verdicts, self.models)]
        ours = [m for m in self.models if m.model == "arcface"]
        if len(self.verdicts) > 1 and ours:
            lines.append(f"*Why the two differ:* {why_they_differ(ours[0])}")
        return "\n\n".join([*lines, *(f"*{note}*" for note in self.notes)])


_DECISIONS = {"same": "Same person", "different": "Different people", "uncertain": "Uncertain"}


def _percent(rate: float | None) -> str:
    return "?" if rate is None else f"{100 * rate:.1f}%"


def _score_words(verdict: dict) -> str:
    """The pair score as a sentence: the cosine, or the cosine less how much each face looks like anyone."""
    if not verdict.get("cohort_size"):
        return f"cosine similarity **{verdict['similarity']:.3f}**"
    return (f"score **{verdict['similarity']:.3f}** (cosine {verdict['cosine']:.3f}, less how much each face looks "
            f"like its {verdict['cohort_size']} nearest training identities)")


def threshold_cost(verdict: dict) -> str:
    """What the threshold costs, in one sentence: the strangers it lets through against the same people it misses."""
    far, frr = verdict.get("validation_far_at_threshold"), verdict.get("validation_frr_at_threshold")
    if far is None or frr is None:  # a card calibrated before the check half was recorded: LFW's rates only
        far, frr, where = verdict["lfw_far_at_threshold"], verdict["lfw_frr_at_threshold"], "on LFW"
    else:
        where = "on validation people it was not set on"
    return (f"*What the threshold costs:* {where}, it called {_percent(far)} of different-person pairs the same "
            f"person and left {_percent(frr)} of same-person pairs below it.")


def _verdict_markdown(verdict: dict, heading: str) -> str:
    low, high = verdict["uncertain_band"]
    side = "above" if verdict["same_person"] else "below"
    band = (
        f" Between {low:.3f} and {high:.3f} the verdict is *uncertain*: validation people's pairs of both kinds "
        "scored there." if high > low else ""
    )
    return (
        f"#### {heading}\n### {_DECISIONS[verdict['decision']]}\n{_score_words(verdict)}, {side} the threshold "
        f"{verdict['threshold']:.3f}, set on validation people no model here trained on. On LFW it accepted "
        f"{_percent(verdict['lfw_far_at_threshold'])} of different-person pairs (FAR) and rejected "
        f"{_percent(verdict['lfw_frr_at_threshold'])} of same-person pairs (FRR).{band}\n\n{threshold_cost(verdict)}"
    )


def compare_faces(first: Any, second: Any, models: list[Verifier] | None = None) -> FaceComparison:
    """Are the two photos the same person? Each model (default: every one available) scores the same faces."""
    found, notes = (models, []) if models else verifiers()
    photos = (face_photo(first, "The first photo"), face_photo(second, "The second photo"))
    faces_found = [photo.face.faces_found for photo in photos]
    with THREADS.single():
        embeddings = [tuple(RECENT_PHOTOS.embedding(model, photo) for photo in photos) for model in found]
    verdicts = [model.verdict(*pair, faces_found) for model, pair in zip(found, embeddings)]
    return FaceComparison(photos, verdicts, notes, found, embeddings)


# ---------------------------------------------------------------------------------------------------- gallery


def enrol(
    gallery: Gallery | None, name: str, source: Any, models: list[Verifier] | None = None
) -> tuple[dict[str, dict[str, Any]], FacePhoto]:
    """A new gallery with ``name`` enrolled from the photo's largest face (a second photo of a name replaces it),
    embedded by every model (default: every one available)."""
    gallery = dict(gallery or {})
    name = (name or "").strip()
    if not name:
        raise InputError("Give the person a name before enrolling their photo.")
    if len(name) > MAX_NAME:
        raise InputError(f"Names are at most {MAX_NAME} characters.")
    if name not in gallery and len(gallery) >= MAX_GALLERY:
        raise InputError(f"The gallery holds {MAX_GALLERY} people: remove one (or clear it) first.")
    photo = face_photo(source, f"The photo of {name}")
    found = models or verifiers()[0]
    with THREADS.single():
        gallery[name] = {"crop": photo.crop, **{model.model: RECENT_PHOTOS.embedding(model, photo) for model in found}}
    return gallery, photo


@dataclass(frozen=True)
class Identification:
    """Who a photo shows among the enrolled people, by the first model; "unknown" when nobody clears its threshold."""

    photo: FacePhoto
    name: str  # an enrolled name or "unknown"
    rows: list[list[Any]]  # [name, similarity per model...], most similar first
    headers: list[str]
    summary: str
    judge: Verifier | None = None  # the model that names
    names: tuple[str, ...] = ()  # enrolled, in the gallery's order
    enrolled: np.ndarray | None = None  # (N, D) the judge's embeddings of them
    probe: np.ndarray | None = None  # the judge's embedding of the photo
    crops: tuple[np.ndarray, ...] = ()

    def view(self) -> GalleryView:
        """The judge's gallery rule for this probe as caps (``Verifier.gallery_view``)."""
        return self.judge.gallery_view(self.enrolled, self.probe, list(self.names))

    def sphere(self) -> go.Figure:
        """The probe among the enrolled faces on the sphere, each with the cap of the gallery's threshold."""
        from arcdemo.viz.face_figures import gallery_sphere_figure

        return gallery_sphere_figure(self.view(), list(self.names), probe_crop=self.photo.crop,
                                     crops=list(self.crops), title=f"Judged by {title(self.judge)}")


def identify(gallery: Gallery | None, source: Any, models: list[Verifier] | None = None) -> Identification:
    """Open-set identification: the enrolled face with the best pair score, named only above the first model's
    threshold for a gallery of this size (``Verifier.gallery_threshold``: a stranger is named at most ~1% of the
    time)."""
    if not gallery:
        raise InputError("The gallery is empty: enrol at least one named face first.")
    found = models or verifiers()[0]
    photo = face_photo(source, "The photo to identify")
    usable = [model for model in found if all(model.model in entry for entry in gallery.values())]
    if not usable:
        raise InputError(
            "The gallery was enrolled with a face model this server no longer has: clear it and enrol again."
        )
    with THREADS.single():
        probes = {model.model: RECENT_PHOTOS.embedding(model, photo) for model in usable}
    names = list(gallery)
    by_model = [m.scores(np.stack([gallery[name][m.model] for name in names]), probes[m.model]) for m in usable]
    scores = {name: [float(model_scores[row]) for model_scores in by_model] for row, name in enumerate(names)}
    ranked = sorted(scores.items(), key=lambda item: -item[1][0])
    best, best_scores = ranked[0]
    judge = usable[0]
    threshold = judge.gallery_threshold(len(gallery))
    named = best_scores[0] > threshold
    name = best if named else "unknown"
    headers = ["name", *(f"similarity ({'ours' if m.model == 'arcface' else 'reference'})" for m in usable)]
    rows = [[person, *(round(s, 3) for s in person_scores)] for person, person_scores in ranked]
    people = "1 person" if len(gallery) == 1 else f"{len(gallery)} people"
    summary = (
        f"**{name}**" + (f" — similarity {best_scores[0]:.3f} > threshold {threshold:.3f}" if named
                         else f" (nearest: {best}, similarity {best_scores[0]:.3f} ≤ threshold {threshold:.3f})")
        + f" · with {people} enrolled the threshold is set so that a stranger is named at most ~1% of the time"
        + f" · judged by {title(judge)}; {photo.note}."
    )
    enrolled = np.stack([gallery[person][judge.model] for person in names])
    crops = tuple(gallery[person]["crop"] for person in names)
    return Identification(
        photo, name, rows, headers, summary, judge, tuple(names), enrolled, probes[judge.model], crops
    )


def gallery_items(gallery: Gallery | None) -> list[tuple[np.ndarray, str]]:
    """(aligned crop, name) for a gr.Gallery."""
    return [(entry["crop"], name) for name, entry in (gallery or {}).items()]


# ------------------------------------------------------------------------------------------------------------ UI

TITLE, ID = "Faces", "faces"
INTRO = (
    "Two photos → the largest face in each is detected (dlib's HOG detector, its CNN detector when HOG finds none), "
    "its 5 landmarks fitted and the face warped onto one 112×112 template — the same crop the model was trained and "
    "tested on. The cosine of the two embeddings against a threshold set on validation people (never trained on, "
    "never LFW) gives the verdict; LFW then says what it costs. Ours first takes back how much each face looks like "
    "anyone: half the mean cosine with its nearest training identities (a blurred or half-turned face is near many "
    "people)."
)
GALLERY_INTRO = (
    "Open-set: a photo is named only when its best similarity clears a threshold that grows with the gallery, set on "
    "validation people so that a stranger is named at most ~1% of the time whether 1 or 12 people are enrolled (with "
    "the one-to-one threshold, each enrolled face would be another chance to name a stranger)."
)


@friendly
def verify_faces(first: Any, second: Any) -> tuple:
    """/verify_faces: both photos with their boxes and aligned crops, the verdicts, and the result as JSON."""
    comparison = compare_faces(first, second)
    a, b = comparison.photos
    images = (image_file(picture) for picture in (a.boxed, b.boxed, a.crop, b.crop))
    return (*images, comparison.summary(), comparison.result())


@friendly
def verify_spheres(first: Any, second: Any) -> tuple:
    """Each model's verdict on the sphere, after /verify_faces (the photos' faces and embeddings are remembered)."""
    comparison = compare_faces(first, second)
    figures = [gr.Plot(frame(comparison.sphere(i), SPHERE_HEIGHT), visible=True) for i in range(len(comparison.models))]
    return tuple(figures + [gr.Plot(visible=False)] * (len(SPHERE_LABELS) - len(figures)))[: len(SPHERE_LABELS)]


@friendly
def identify_sphere(photo: Any, gallery: Gallery) -> Any:
    """The probe among the enrolled faces on the sphere, after /identify_face."""
    return frame(identify(gallery, photo).sphere(), SPHERE_HEIGHT)


@friendly
def enrol_face(name: str, photo: Any, gallery: Gallery) -> tuple:
    """/enrol_face: add a named person to this session's gallery."""
    gallery, enrolled = enrol(gallery, name, photo)
    note = f"Enrolled **{name.strip()}** ({enrolled.note}). {len(gallery)} in the gallery."
    return [(image_file(crop), name) for crop, name in gallery_items(gallery)], note, gallery


def clear_gallery() -> tuple:
    return [], "The gallery is empty.", {}


@friendly
def identify_face(photo: Any, gallery: Gallery) -> tuple:
    """/identify_face: the enrolled person a photo shows, or nobody."""
    found = identify(gallery, photo)
    return image_file(found.photo.boxed), found.summary, {"headers": found.headers, "data": found.rows}, found.name


SPHERE_LABELS = ("On the sphere: the first model's verdict", "On the sphere: the second model's verdict")


def _photo(label: str, height: int, **options: Any) -> gr.Image:
    return guard_image(gr.Image(label=label, type="filepath", image_mode=None, height=height,
                                sources=["upload", "webcam", "clipboard"], **options))


def build(ctx: Context) -> None:
    with ctx.tab(TITLE, ID):
        gr.Markdown(INTRO)
        with gr.Row():
            photos = [_photo(label, 280, elem_id=elem_id) for label, elem_id in (("First photo", "face-a"),
                                                                                  ("Second photo", "face-b"))]
        verify_button = gr.Button("Same person?", variant="primary", elem_id="verify-button")
        boxed, crops = [], []
        with gr.Row():
            for which in ("First", "Second"):
                with gr.Column(), gr.Row():
                    boxed.append(gr.Image(label=f"{which}: detected faces (green: used)", interactive=False,
                                          height=240, scale=3))
                    crops.append(gr.Image(label="aligned 112×112", interactive=False, height=150, scale=1,
                                          min_width=120))
        summary = gr.Markdown(elem_id="face-summary")
        with gr.Row():
            spheres = [gr.Plot(label=label, visible=False, elem_id=f"face-sphere-{i}")
                       for i, label in enumerate(SPHERE_LABELS)]
        with gr.Accordion("Result as JSON (the /verify_faces API)", open=False):
            result = gr.JSON()
        with gr.Accordion("Gallery: enrol a few people, then identify a new photo among them", open=False):
            gr.Markdown(GALLERY_INTRO)
            gallery = gr.State({})
            with gr.Row():
                with gr.Column():
                    enrol_name = gr.Textbox(label="Name", max_lines=1, elem_id="enrol-name")
                    enrol_photo = _photo("Their photo", 220, elem_id="enrol-photo")
                    with gr.Row():
                        enrol_button = gr.Button("Enrol", variant="secondary", elem_id="enrol-button")
                        clear_button = gr.Button("Clear gallery")
                    enrol_note = gr.Markdown(elem_id="enrol-note")
                    enrolled = gr.Gallery(label="Enrolled (aligned crops)", columns=6, height=160)
                with gr.Column():
                    probe = _photo("Who is this?", 220, elem_id="probe-photo")
                    identify_button = gr.Button("Identify", variant="primary", elem_id="identify-button")
                    identity = gr.Textbox(label="Identified as", interactive=False)
                    identify_summary = gr.Markdown(elem_id="identify-summary")
                    probe_boxed = gr.Image(label="Detected faces", interactive=False, height=200)
                    table = gr.Dataframe(label="Similarity to each enrolled face", interactive=False)
            gallery_sphere = gr.Plot(label="On the sphere: the probe and each enrolled person's cap",
                                     elem_id="gallery-sphere")

    verify_button.click(verify_faces, photos, [*boxed, *crops, summary, result], api_name="verify_faces",
                        concurrency_limit=2).success(verify_spheres, photos, spheres, api_visibility="private")
    enrol_button.click(enrol_face, [enrol_name, enrol_photo, gallery], [enrolled, enrol_note, gallery],
                       api_name="enrol_face", concurrency_limit=2)
    clear_button.click(clear_gallery, None, [enrolled, enrol_note, gallery], api_visibility="private")
    identify_button.click(identify_face, [probe, gallery], [probe_boxed, identify_summary, table, identity],
                          api_name="identify_face", concurrency_limit=2).success(
        identify_sphere, [probe, gallery], gallery_sphere, api_visibility="private")

