"""pilive: a push-to-talk voice and vision assistant for Raspberry Pi on the Gemini Live API."""

__version__ = "0.1.0"
