#!/usr/bin/env python3
"""Synthesizes the alert tones that ship with the portal.

Run from anywhere: `python3 web/sounds/make_tones.py`. It rewrites chime.wav,
marimba.wav, pop.wav and bell.wav beside this script (22.05 kHz, mono,
16-bit). Only the standard library is used, and the output is deterministic,
so a re-run yields byte-identical files.
"""

import math
import struct
import wave
from pathlib import Path

RATE = 22050
PEAK = 0.6  # headroom: alerts should not be startling


def envelope(t, attack, decay):
    """A short linear attack, then exponential decay."""
    if t < attack:
        return t / attack
    return math.exp(-(t - attack) / decay)


def note(freq, duration, partials, attack=0.004, decay=0.25):
    """One note as a list of samples; partials are (ratio, gain, decay scale)."""
    samples = []
    for i in range(int(duration * RATE)):
        t = i / RATE
        value = 0.0
        for ratio, gain, decay_scale in partials:
            value += gain * envelope(t, attack, decay * decay_scale) * math.sin(2 * math.pi * freq * ratio * t)
        samples.append(value)
    return samples


def mix(length, *placed):
    """Adds (offset_seconds, samples) tracks into one buffer of `length` seconds."""
    out = [0.0] * int(length * RATE)
    for offset, samples in placed:
        start = int(offset * RATE)
        for i, value in enumerate(samples):
            if start + i < len(out):
                out[start + i] += value
    return out


def fade_out(samples, seconds=0.03):
    n = int(seconds * RATE)
    for i in range(n):
        samples[-n + i] *= 1 - i / n
    return samples


def normalize(samples):
    top = max(abs(s) for s in samples) or 1.0
    return [s / top * PEAK for s in samples]


def chime():
    partials = [(1, 1.0, 1.0), (2, 0.25, 0.5), (3, 0.08, 0.3)]
    return mix(
        0.9,
        (0.0, note(987.77, 0.9, partials, decay=0.28)),   # B5
        (0.14, note(1318.51, 0.76, partials, decay=0.3)),  # E6
    )


def marimba():
    partials = [(1, 1.0, 1.0), (4, 0.35, 0.15), (9.9, 0.08, 0.05)]
    return mix(
        0.75,
        (0.0, note(523.25, 0.5, partials, attack=0.002, decay=0.12)),   # C5
        (0.1, note(659.25, 0.5, partials, attack=0.002, decay=0.12)),   # E5
        (0.2, note(783.99, 0.55, partials, attack=0.002, decay=0.14)),  # G5
    )


def pop():
    samples = []
    duration = 0.16
    phase = 0.0
    for i in range(int(duration * RATE)):
        t = i / RATE
        freq = 380 + 900 * (t / duration) ** 0.6  # a quick upward sweep
        phase += 2 * math.pi * freq / RATE
        samples.append(envelope(t, 0.003, 0.035) * (math.sin(phase) + 0.2 * math.sin(2 * phase)))
    return samples + [0.0] * int(0.05 * RATE)


def bell():
    # Inharmonic partials of a struck bell.
    partials = [(0.5, 0.35, 1.4), (1, 1.0, 1.0), (1.19, 0.45, 0.8), (1.56, 0.3, 0.6), (2.0, 0.25, 0.5), (2.74, 0.2, 0.35), (3.76, 0.1, 0.25)]
    return note(880.0, 1.3, partials, attack=0.002, decay=0.45)


def write(path, samples):
    samples = fade_out(normalize(samples))
    with wave.open(str(path), 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b''.join(struct.pack('<h', int(max(-1.0, min(1.0, s)) * 32767)) for s in samples))


def main():
    here = Path(__file__).resolve().parent
    for name, make in [('chime', chime), ('marimba', marimba), ('pop', pop), ('bell', bell)]:
        path = here / f'{name}.wav'
        write(path, make())
        print(f'{path.name}: {path.stat().st_size} bytes')


if __name__ == '__main__':
    main()
