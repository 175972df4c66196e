"""The Streamlit explorer: routing and rendering only (logic lives in ``actbert`` and ``indexer``).

Run it with ``python -m app [--library DIR]`` (binds 127.0.0.1) or
``streamlit run app/streamlit_app.py --server.address 127.0.0.1 --server.headless true -- --library DIR``.
"""
