"""stream-sea: the names of stream-sea-client 0.7.0 (in progress).

Landed so far, all sans-I/O: ``schema`` (``FieldType``, ``SchemaDefinition``, payload
validation), ``protocol`` (the websocket messages and both ends' connection state) and
``http`` (the HTTP API's server side on h11, handing websocket upgrades over). The client,
the embedded server and the pipeline kinds come next.
"""
