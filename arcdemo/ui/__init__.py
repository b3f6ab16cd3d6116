"""The Gradio app: Explore, Train, Draw, Classify and Faces tabs over the margin-loss core.

``build_demo()`` returns the Blocks; ``launch_options()`` the launch keywords (theme, css, host, port). The
behaviour lives in ``arcdemo.ui.callbacks`` as plain functions; ``arcdemo.ui.models`` finds, loads and caches
models; ``arcdemo.ui.faces`` holds the Faces tab's verification and gallery; ``arcdemo.ui.plots`` keeps the
per-model base figure a new point is spliced into.
"""

from arcdemo.ui.layout import build_demo, launch_options

__all__ = ["build_demo", "launch_options"]
