"""layerwise HTTP server (the serve extra): TEI- and OpenAI-compatible per-layer embeddings.

One request's path, one module per step:
    middleware.py  API key, request metrics        settings.py  flags, checked before listening
    routes.py      routes, limits in order          schema.py    JSON body -> EmbedRequest (422/400/413)
    pipeline.py    token lengths, output size       batcher.py   bounded dynamic batching, one run at a time
    render.py      JSON / base64 / .npy / .npz      errors.py    the one exception -> status table
    lifecycle.py   load, warm, ready, drain         metrics.py   Prometheus text registry
    tei.py         TEI's aliases, /tokenize, /decode openapi.py   /docs: OpenAPI from the route table
    app.py         Starlette + uvicorn, ``serve``   openapi_fields.py  request schemas with the model's limits
    connection.py  uvicorn's protocol + read deadlines
Starlette and uvicorn are imported only inside this package.
"""
