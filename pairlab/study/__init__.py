"""User studies: blind two-image preference studies that reproduce paper 000's Table 6.

    sources.py   candidates (one per run: label + sample -> output image) from the evaluation cache or folders
    plan.py      StudyDesign -> freeze(): opaque media copies + plan.json with SHA-256 hashes; frozen = immutable
    session.py   the participant side without HTTP: join, state, vote (assignment per participant, signed handles)
    store.py     the SQLite vote store (WAL, synchronous=FULL, group commit, one vote per participant and trial)
    access.py    the HMAC secret, participant tokens, completion codes, and the lab's login (PAIRLAB_AUTH)
    stats.py     Table 6 with Wilson intervals and binomial tests, Bradley-Terry with bootstrap, consistency, catch
    export.py    study_results() and export_study(): votes.csv, table6.csv/.tex, pairs, ranking, participants
    server.py    the participant page (FastAPI, plain HTML + JS from assets/study/, its own port; not a Gradio tab)
    bench.py     bench_votes(): concurrent participants through the real HTTP interface

The lab's designer and results are ``pairlab.ui.study_tab``; ``python -m pairlab study ...`` is ``pairlab.cli.study``. Nothing here imports Gradio.
"""
