"""An offline replica of tass.com (English TASS) served over real HTTP.

Run ``python -m replica --port 0``; see ``replica.__main__`` for the switches and
``replica.truth`` for the ground-truth schema. Content is a pure function of the seed, the
archive size, the day and the start date.
"""
