"""The Gradio app: Explore, Train, Draw, Classify and Faces tabs over the margin-loss core.

``build_demo()`` returns the Blocks; ``launch_options()`` the launch keywords (theme, css, host, port).
``ui.tabs.<tab>`` holds each tab (its service functions and ``build(ctx)``); ``ui.context`` what the tabs share;
``ui.common`` errors as sentences, upload guards and the progress bar; ``ui.tweaks`` what leans on Gradio's
internals; ``ui.store`` the session's model store; ``ui.predict`` Draw and Classify's prediction; ``ui.threads``
CPU scheduling; ``ui.desk`` the training desk.
"""

from arcdemo.ui.page import build_demo, launch_options

__all__ = ["build_demo", "launch_options"]
