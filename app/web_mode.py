"""Web mode (``python live.py --web``): the studio and live panel server, beside the live run.

The server runs on a background thread; the live run keeps the main thread
(the preview window needs it). When the camera cannot be opened, or a file
source ends, the studio keeps working and the Live tab says why; a camera
picked there is tried next. q, Esc, Ctrl-C, SIGTERM, closing the window,
--duration or --max-frames end everything: the pipeline first (the recording
is finalised), then the server, within about 2 s.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import signal
import sys
import threading
from pathlib import Path

from realtime import SinkError, SourceError, has_display, install_signal_handlers, make_source, say
from realtime.controls import TerminalKeys, action_for_key
from realtime.remote import LiveHandle
from web import WebOptions, WebServer, is_loopback
from web.guard import new_token

from .build import build_background, build_id_maker, build_pipeline
from .config import Settings

log = logging.getLogger(__name__)

#: Pipeline stop reasons that end web mode (anything else: the source ended, wait for a retry).
USER_STOPS = ("quit", "window closed", "interrupted", "signal", "time limit", "frame limit")


def web_options(settings: Settings) -> WebOptions:
    token = settings.token
    if not is_loopback(settings.host):
        token = token or new_token()
        log.warning("listening on %s, beyond this computer: anyone who can reach it and has the token can see "
                    "the camera and use the studio. Every request needs the token.", settings.host)
    return WebOptions(host=settings.host, port=settings.port, token=token, max_upload_mb=settings.max_upload_mb,
                      backgrounds_dir=settings.backgrounds_dir)


def run_web(settings: Settings) -> int:
    if settings.window and not has_display():
        log.info("no display: the live view is shown in the browser only (no preview window)")
        settings = dataclasses.replace(settings, window=False)
    if settings.background:
        build_background(settings, photo=False).close()  # a bad --background is refused before the server starts
    live = LiveHandle(settings.source or settings.camera, source=settings.source)
    server = WebServer(build_id_maker(settings), live, web_options(settings))
    try:
        server.start()
    except BaseException:  # a taken port, an app that cannot be made, Ctrl-C while it starts
        server.stop()      # (its temporary upload folder goes too; stopping twice is harmless)
        raise
    local = f"http://127.0.0.1:{settings.port}/" + (f"?token={server.options.token}" if server.options.token else "")
    shown = server.url if server.url == local else f"{server.url} (on this computer: {local})"
    say(f"studio and live panel: {shown}", sys.stdout)  # the CLI's own output
    stopping = threading.Event()
    opening = threading.Event()  # set while the source opens: a named pipe waits for its writer, watching nothing

    def on_signal(signum, frame):
        stopping.set()
        live.close()
        if opening.is_set():  # end that wait as Ctrl-C does (KeyboardInterrupt: the server stops below)
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        run_live_loop(settings, live, stopping, opening)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


def run_live_loop(settings: Settings, live: LiveHandle, stopping: threading.Event,
                  opening: threading.Event | None = None) -> None:
    """Open the source and run the pipeline; on failure wait for a retry from the Live tab.
    ``opening`` is set while the source opens and reads its first frame."""
    opening = opening or threading.Event()
    runs, first_record = 0, settings.record
    while not stopping.is_set() and not live.closed:
        if runs and first_record:  # a restarted run records into a new file: never over the last one
            settings = dataclasses.replace(settings, record=next_free(first_record))
        chosen = live.camera  # the --source / --camera, or a camera picked in the Live tab
        from_file = settings.source is not None and chosen == settings.source
        source = make_source(settings.camera if from_file else chosen, chosen if from_file else None,
                             settings.loop, settings.size, settings.fps, settings.fourcc, pace=True)
        try:
            opening.set()
            try:
                source.open()
                first = source.read()
            finally:
                opening.clear()
            if first is None:
                raise SourceError(f"{source.name} has no frames")
            pipeline = build_pipeline(settings, source, first)
        except (SourceError, SinkError) as exc:
            source.close()
            output = isinstance(exc, SinkError)  # (the virtual camera or the recording: no camera fixes that)
            log.warning("live view unavailable: %s (the studio still works; %s in the Live tab)", exc,
                        "fix that, then try again" if output else "pick another camera")
            live.detach("failed", str(exc), "output" if output else "camera")
            if not wait_for_restart(live, stopping):
                return
            continue
        except BaseException:
            source.close()
            raise
        if runs and first_record:
            log.info("this run records to %s", settings.record)
        runs += 1
        pipeline.remote = live
        live.attach(pipeline)
        restore = install_signal_handlers(pipeline)
        if stopping.is_set() or live.closed:  # SIGTERM while the run was being built (a model loading)
            pipeline.stop("signal received while starting")
        try:
            stats = pipeline.run()
        finally:
            restore()
            live.detach("stopped" if pipeline.stop_reason else "ended")
        log.info("live view stopped: %s", pipeline.stop_reason or "the source ended")
        if settings.stats:
            say(stats.summary(pipeline.capture.frames_read))
            say(stats.stage_line())
        reason = pipeline.stop_reason
        # A pipeline holds reference cycles (its controls call back into it): left to the garbage
        # collector's own pace, which a server's many long-lived objects make rare, every run
        # restarted from the panel kept its model and buffers (about 25 MB each).
        del pipeline, source
        if reason.startswith(USER_STOPS) or stopping.is_set():
            return  # (the process ends: nothing to collect)
        gc.collect()
        if not wait_for_restart(live, stopping):
            return


def wait_for_restart(live: LiveHandle, stopping: threading.Event) -> bool:
    """Wait for a retry from the Live tab (True); q or Esc in the terminal stop the server meanwhile,
    as they do while a run goes (False; so do a signal and a closed handle)."""
    quit_now = threading.Event()
    keys = TerminalKeys(quit_now)
    keys.start()
    if keys.enabled:
        say("the studio still works; q or Esc here (or Ctrl-C) stops the server")
    try:
        while not (stopping.is_set() or live.closed):
            if live.wait_for_restart(timeout=0.1):
                return True
            if any((action_for_key(key) or ("",))[0] == "quit" for key in keys.drain()):
                log.info("stopping the server (q)")
                return False
        return False
    finally:
        quit_now.set()
        if keys.is_alive():
            keys.join(1.0)
        keys.restore()


def next_free(path: str) -> str:
    """``call.mp4`` -> the first of ``call-2.mp4``, ``call-3.mp4``, ... that does not exist."""
    base, n = Path(path), 2
    while (candidate := base.with_name(f"{base.stem}-{n}{base.suffix}")).exists():
        n += 1
    return str(candidate)
