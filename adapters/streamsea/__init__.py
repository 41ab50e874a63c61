"""stream-sea: the names of stream-sea-client 0.7.0 (in progress).

Landed so far, both sans-I/O: ``schema`` (``FieldType``, ``SchemaDefinition``, payload
validation) and ``protocol`` (the websocket messages and both ends' connection state). The
client, the embedded server and the pipeline kinds come next.
"""
