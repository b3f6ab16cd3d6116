import gc
import os
import sys

from arcdemo.cli import main

status = main()
gc.freeze()  # nothing is left to collect: skips the interpreter's final sweep of torch's objects (~0.7 s at exit)
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A torchrun worker has torn its process group down (cli._leave_process_group) and written all it writes; gloo's
    # C++ threads can still abort it while the interpreter finalises ("terminate called without an active
    # exception", pytorch/pytorch PR #179291 describes the race), which failed a finished rank now and then here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
sys.exit(status)
