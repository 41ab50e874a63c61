from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyHeader(_message.Message):
    __slots__ = ("schema", "data_type", "source", "group", "id", "seq", "timestamp_ns", "voided", "publisher", "epoch", "pos", "publish_id")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    VOIDED_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    schema: str
    data_type: str
    source: str
    group: str
    id: str
    seq: int
    timestamp_ns: int
    voided: bool
    publisher: str
    epoch: int
    pos: int
    publish_id: str
    def __init__(self, schema: _Optional[str] = ..., data_type: _Optional[str] = ..., source: _Optional[str] = ..., group: _Optional[str] = ..., id: _Optional[str] = ..., seq: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., voided: _Optional[bool] = ..., publisher: _Optional[str] = ..., epoch: _Optional[int] = ..., pos: _Optional[int] = ..., publish_id: _Optional[str] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: KeyHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[KeyHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("schema", "data_type", "source", "group", "id")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    schema: str
    data_type: str
    source: str
    group: str
    id: str
    def __init__(self, schema: _Optional[str] = ..., data_type: _Optional[str] = ..., source: _Optional[str] = ..., group: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("application_name", "api_key")
    APPLICATION_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    application_name: str
    api_key: str
    def __init__(self, application_name: _Optional[str] = ..., api_key: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("session_id", "heartbeat_interval", "heartbeat_deadline", "platform", "max_record_bytes")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORD_BYTES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    heartbeat_interval: float
    heartbeat_deadline: float
    platform: str
    max_record_bytes: int
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval: _Optional[float] = ..., heartbeat_deadline: _Optional[float] = ..., platform: _Optional[str] = ..., max_record_bytes: _Optional[int] = ...) -> None: ...

class FieldDef(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class DataTypeDef(_message.Message):
    __slots__ = ("schema", "name", "fields", "can_read", "can_publish")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    CAN_READ_FIELD_NUMBER: _ClassVar[int]
    CAN_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    schema: str
    name: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldDef]
    can_read: bool
    can_publish: bool
    def __init__(self, schema: _Optional[str] = ..., name: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldDef, _Mapping]]] = ..., can_read: _Optional[bool] = ..., can_publish: _Optional[bool] = ...) -> None: ...

class SchemaRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SchemaReply(_message.Message):
    __slots__ = ("version", "types")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    version: int
    types: _containers.RepeatedCompositeFieldContainer[DataTypeDef]
    def __init__(self, version: _Optional[int] = ..., types: _Optional[_Iterable[_Union[DataTypeDef, _Mapping]]] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ("session_id", "topic")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    topic: Topic
    def __init__(self, session_id: _Optional[str] = ..., topic: _Optional[_Union[Topic, _Mapping]] = ...) -> None: ...

class RecordBatch(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class Subscribe(_message.Message):
    __slots__ = ("sub_id", "topic", "cached", "resume", "resume_epoch", "resume_pos")
    SUB_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    RESUME_EPOCH_FIELD_NUMBER: _ClassVar[int]
    RESUME_POS_FIELD_NUMBER: _ClassVar[int]
    sub_id: int
    topic: Topic
    cached: bool
    resume: bool
    resume_epoch: int
    resume_pos: int
    def __init__(self, sub_id: _Optional[int] = ..., topic: _Optional[_Union[Topic, _Mapping]] = ..., cached: _Optional[bool] = ..., resume: _Optional[bool] = ..., resume_epoch: _Optional[int] = ..., resume_pos: _Optional[int] = ...) -> None: ...

class Unsubscribe(_message.Message):
    __slots__ = ("sub_id",)
    SUB_ID_FIELD_NUMBER: _ClassVar[int]
    sub_id: int
    def __init__(self, sub_id: _Optional[int] = ...) -> None: ...

class Publish(_message.Message):
    __slots__ = ("request_id", "records", "store", "publish_ids")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_IDS_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    records: _containers.RepeatedCompositeFieldContainer[Record]
    store: bool
    publish_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[int] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., store: _Optional[bool] = ..., publish_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Edit(_message.Message):
    __slots__ = ("request_id", "key", "patch", "publish_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    key: Topic
    patch: bytes
    publish_id: str
    def __init__(self, request_id: _Optional[int] = ..., key: _Optional[_Union[Topic, _Mapping]] = ..., patch: _Optional[bytes] = ..., publish_id: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("hello", "subscribe", "unsubscribe", "publish", "edit", "ping")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    EDIT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    subscribe: Subscribe
    unsubscribe: Unsubscribe
    publish: Publish
    edit: Edit
    ping: Ping
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., subscribe: _Optional[_Union[Subscribe, _Mapping]] = ..., unsubscribe: _Optional[_Union[Unsubscribe, _Mapping]] = ..., publish: _Optional[_Union[Publish, _Mapping]] = ..., edit: _Optional[_Union[Edit, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "schema_version")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    schema_version: int
    def __init__(self, session_id: _Optional[str] = ..., schema_version: _Optional[int] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("sub_id", "records", "snapshot_done", "snapshot", "epoch", "pos")
    SUB_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DONE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    sub_id: int
    records: _containers.RepeatedCompositeFieldContainer[Record]
    snapshot_done: bool
    snapshot: bool
    epoch: int
    pos: int
    def __init__(self, sub_id: _Optional[int] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., snapshot_done: _Optional[bool] = ..., snapshot: _Optional[bool] = ..., epoch: _Optional[int] = ..., pos: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("request_id", "status", "code", "message", "count", "duplicates")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    status: str
    code: str
    message: str
    count: int
    duplicates: int
    def __init__(self, request_id: _Optional[int] = ..., status: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., count: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class SubscribeReply(_message.Message):
    __slots__ = ("sub_id", "status", "code", "message", "resumed", "gap", "epoch", "pos")
    SUB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    sub_id: int
    status: str
    code: str
    message: str
    resumed: bool
    gap: Gap
    epoch: int
    pos: int
    def __init__(self, sub_id: _Optional[int] = ..., status: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., resumed: _Optional[bool] = ..., gap: _Optional[_Union[Gap, _Mapping]] = ..., epoch: _Optional[int] = ..., pos: _Optional[int] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("epoch", "after_pos", "missed", "reason")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AFTER_POS_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    after_pos: int
    missed: int
    reason: str
    def __init__(self, epoch: _Optional[int] = ..., after_pos: _Optional[int] = ..., missed: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SchemaChanged(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("n",)
    N_FIELD_NUMBER: _ClassVar[int]
    n: int
    def __init__(self, n: _Optional[int] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "delivery", "ack", "subscribed", "schema_changed", "pong", "batch")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    delivery: Delivery
    ack: Ack
    subscribed: SubscribeReply
    schema_changed: SchemaChanged
    pong: Pong
    batch: Batch
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., subscribed: _Optional[_Union[SubscribeReply, _Mapping]] = ..., schema_changed: _Optional[_Union[SchemaChanged, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ServerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ServerMessage, _Mapping]]] = ...) -> None: ...

class CatalogRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...
