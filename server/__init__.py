"""layerwise HTTP server (the serve extra): TEI- and OpenAI-compatible per-layer embeddings.

Each dialect in one module, with its routes, request models, answers and error body:
    tei.py         /embed, /embed_all, /, /invocations, /ping, /tokenize, /decode
    openai.py      /v1/embeddings, /embeddings
What they share, one concern a module:
    fields.py      request fields as pydantic types, with the model's limits   dialect.py   Dialect: one API's shape
    parse.py       body -> request model; pydantic's refusals worded (422/400)  rules.py     refused field combinations
    embed_body.py  an embedding request -> the runtime's EmbedOptions         embedding.py the embedding route's flow
    body.py        body reading (413, 408), clients that leave                  render.py    JSON / base64 / .npy / .npz
    batcher.py     admission (429), bounded dynamic batching, one run at a time status.py    /health /live /info /metrics
    errors.py      the one exception -> status table, error answers             openapi.py   /docs, described from the models
    lifecycle.py   load, warm, ready, drain    middleware.py  API key, request metrics    metrics.py  Prometheus text
    app.py         Starlette + uvicorn, ``serve``    settings.py  flags, checked before listening
    connection.py  uvicorn's protocol + read deadlines
Starlette, uvicorn and pydantic are imported only inside this package.
"""
