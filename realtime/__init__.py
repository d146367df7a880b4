"""The live loop's threads and devices: sources, capture, inference, the render loop, controls, sinks.

Imports :mod:`matting` and :mod:`compositing`; knows nothing of settings or exit codes.
"""

from .console import ConsoleHandler, say
from .errors import PipelineError, SinkError, SourceError
from .pipeline import Pipeline, PipelineOptions
from .signals import has_display, install_signal_handlers
from .sinks import NullSink, RecorderSink, Sink, VirtualCameraSink, WindowSink
from .sources import FrameSource, make_source

__all__ = ["ConsoleHandler", "say", "PipelineError", "SinkError", "SourceError", "Pipeline", "PipelineOptions",
           "has_display", "install_signal_handlers", "NullSink", "RecorderSink", "Sink", "VirtualCameraSink",
           "WindowSink", "FrameSource", "make_source"]
