"""Buttons, LEDs and keyboard push-to-talk: the appliance's physical edges.

Import the submodules directly: `events` and `patterns` are pure data (the conversation state
machine imports `events`); `gpio` wraps gpiozero; `keyboard` reads stdin. This package module
imports nothing, so the pure parts never pull in asyncio or gpiozero.
"""
