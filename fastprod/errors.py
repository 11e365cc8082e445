"""Exceptions raised by fastprod, and the Kafka error-code table.

Three families, as in asyncpg: errors the broker reports (``KafkaError`` subclasses,
one per Kafka error code), misuse of the API (``ConfigError``, ``IllegalStateError``,
``TypeError``), and internal protocol errors (``ProtocolError``, ``CorruptRecordError``).

The broker errors follow ``org.apache.kafka.common.protocol.Errors`` of Kafka 4.3.1:
``ERROR_TABLE`` holds one row per code (-1 through 133) and the class block below holds
one exception class per row, written out so that IDEs and type checkers see every name.
A class's place in the hierarchy says how the producer treats it, as in Java:

- ``RetriableError``: sending again may succeed (Java ``RetriableException``);
- ``InvalidMetadataError``: refresh the metadata, then send again (Java
  ``InvalidMetadataException``, for example NOT_LEADER_OR_FOLLOWER);
- anything else is final for the record or batch that got it.

This module imports nothing from fastprod: the compiled kernels depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, NamedTuple


class FastprodError(Exception):
    """Base class of every exception fastprod raises on its own account."""


class ConfigError(FastprodError, ValueError):
    """A configuration key is unknown or its value is not accepted."""


class ProtocolError(FastprodError):
    """Bytes from the wire do not follow the Kafka protocol (truncated or malformed)."""


class CorruptRecordError(ProtocolError):
    """A record batch is truncated, malformed, or fails its CRC-32C check.

    ``expected_crc`` and ``actual_crc`` are set when the CRC does not match: the
    value stored in the batch header and the one computed over its bytes.
    """

    def __init__(self, message: str, expected_crc: int | None = None,
                 actual_crc: int | None = None) -> None:
        super().__init__(message)
        self.expected_crc = expected_crc
        self.actual_crc = actual_crc


# --------------------------------------------------------------------------------------
# API misuse (not broker errors)
# --------------------------------------------------------------------------------------


class IllegalStateError(FastprodError, RuntimeError):
    """An API call is not allowed in the producer's current state (Java IllegalStateException)."""


class ProducerClosedError(IllegalStateError):
    """The producer was used after close() (Java: IllegalStateException on a closed producer)."""


class SerializationError(FastprodError):
    """A key or value could not be serialized (Java SerializationException)."""


# --------------------------------------------------------------------------------------
# Broker and delivery errors: the root and the families
# --------------------------------------------------------------------------------------


class KafkaError(FastprodError):
    """Root of the errors a send can fail with: broker error codes and client-side failures."""

    # The Kafka error code; None for a failure that has no wire code. An instance that
    # error_for_code made for an unknown code carries that code instead.
    code: ClassVar[int | None] = None
    name: ClassVar[str] = "KAFKA_ERROR"  # Kafka's name for the code
    # Sending again may succeed / refresh the metadata before sending again.
    retriable: ClassVar[bool] = False
    invalid_metadata: ClassVar[bool] = False
    default_message: ClassVar[str] = "The request failed."  # when no message is given

    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:
        text = self.default_message if message is None else message
        super().__init__(text)
        self.message = text
        if code is not None:
            # Shadows the class attribute; kept in __dict__ so that pickling keeps it.
            self.code = code  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class RetriableError(KafkaError):
    """A transient error: the same request may succeed if sent again (Java RetriableException)."""

    retriable = True


class RefreshRetriableError(RetriableError):
    """Retriable after looking something up again: metadata or a coordinator."""


class InvalidMetadataError(RefreshRetriableError):
    """Retriable after a metadata refresh: leadership or topic layout changed."""

    invalid_metadata = True


class AuthorizationError(KafkaError):
    """The principal is not allowed to do this (Java AuthorizationException)."""


class AuthenticationError(KafkaError):
    """The client could not authenticate with the broker (Java AuthenticationException)."""


class ApplicationRecoverableError(KafkaError):
    """Fatal for this producer or member; the application can recover by starting over."""


# --------------------------------------------------------------------------------------
# The error-code table (Kafka 4.3.1 org.apache.kafka.common.protocol.Errors)
# --------------------------------------------------------------------------------------


class ErrorCode(NamedTuple):
    """One row of the Kafka error-code table."""

    code: int
    name: str
    retriable: bool
    invalid_metadata: bool
    message: str
    class_name: str | None  # None for code 0 (NONE), which is not an error
    base_name: str | None


_KAFKA = "KafkaError"
_RETRY = "RetriableError"
_REFRESH = "RefreshRetriableError"
_META = "InvalidMetadataError"
_AUTHZ = "AuthorizationError"
_AUTHN = "AuthenticationError"
_RECOVER = "ApplicationRecoverableError"

# (code, NAME, exception class, its base, default message). The class names follow the
# Java exception classes, "Exception" -> "Error", with two exceptions where a Python name
# is taken: REQUEST_TIMED_OUT is KafkaTimeoutError (Java TimeoutException; Python's
# builtin TimeoutError is an OSError) and CORRUPT_MESSAGE is CorruptMessageError (Java
# CorruptRecordException; CorruptRecordError here is the client-side ProtocolError).
_ROWS: tuple[tuple[int, str, str | None, str | None, str], ...] = (
    (-1, "UNKNOWN_SERVER_ERROR", "UnknownServerError", _KAFKA,
     "The broker hit an unexpected error while handling the request."),
    (0, "NONE", None, None, "No error."),
    (1, "OFFSET_OUT_OF_RANGE", "OffsetOutOfRangeError", _KAFKA,
     "The offset is outside the range the broker holds for this partition."),
    (2, "CORRUPT_MESSAGE", "CorruptMessageError", _RETRY,
     "The broker found a corrupt or oversized record, or a null key on a compacted topic."),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", "UnknownTopicOrPartitionError", _META,
     "The broker does not host this topic-partition."),
    (4, "INVALID_FETCH_SIZE", "InvalidFetchSizeError", _KAFKA,
     "The fetch size is not valid."),
    (5, "LEADER_NOT_AVAILABLE", "LeaderNotAvailableError", _META,
     "The partition has no leader right now: an election is in progress."),
    (6, "NOT_LEADER_OR_FOLLOWER", "NotLeaderOrFollowerError", _META,
     "The broker is not the leader, or not a replica, of this partition."),
    (7, "REQUEST_TIMED_OUT", "KafkaTimeoutError", _RETRY,
     "The request timed out."),
    (8, "BROKER_NOT_AVAILABLE", "BrokerNotAvailableError", _KAFKA,
     "The broker is not available."),
    (9, "REPLICA_NOT_AVAILABLE", "ReplicaNotAvailableError", _META,
     "The replica is not available for this partition."),
    (10, "MESSAGE_TOO_LARGE", "RecordTooLargeError", _KAFKA,
     "The record is larger than the broker or the producer accepts."),
    (11, "STALE_CONTROLLER_EPOCH", "ControllerMovedError", _KAFKA,
     "The controller has moved to another broker."),
    (12, "OFFSET_METADATA_TOO_LARGE", "OffsetMetadataTooLargeError", _KAFKA,
     "The metadata string of the offset commit is too large."),
    (13, "NETWORK_EXCEPTION", "NetworkError", _META,
     "The connection to the broker broke before a response arrived."),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", "CoordinatorLoadInProgressError", _RETRY,
     "The coordinator is still loading its state."),
    (15, "COORDINATOR_NOT_AVAILABLE", "CoordinatorNotAvailableError", _REFRESH,
     "The coordinator is not available."),
    (16, "NOT_COORDINATOR", "NotCoordinatorError", _REFRESH,
     "The broker is not the coordinator for this group or transactional id."),
    (17, "INVALID_TOPIC_EXCEPTION", "InvalidTopicError", _KAFKA,
     "The topic name is not valid, or the topic is internal."),
    (18, "RECORD_LIST_TOO_LARGE", "RecordBatchTooLargeError", _KAFKA,
     "The record batch is larger than the broker's segment size."),
    (19, "NOT_ENOUGH_REPLICAS", "NotEnoughReplicasError", _RETRY,
     "Rejected: fewer in-sync replicas than min.insync.replicas."),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "NotEnoughReplicasAfterAppendError", _RETRY,
     "Written, but to fewer in-sync replicas than min.insync.replicas."),
    (21, "INVALID_REQUIRED_ACKS", "InvalidRequiredAcksError", _KAFKA,
     "The acks value of the produce request is not valid."),
    (22, "ILLEGAL_GENERATION", "IllegalGenerationError", _RECOVER,
     "The group generation id is not valid."),
    (23, "INCONSISTENT_GROUP_PROTOCOL", "InconsistentGroupProtocolError", _KAFKA,
     "The member's group protocols do not match those of the group."),
    (24, "INVALID_GROUP_ID", "InvalidGroupIdError", _KAFKA,
     "The group id is not valid."),
    (25, "UNKNOWN_MEMBER_ID", "UnknownMemberIdError", _RECOVER,
     "The coordinator does not know this member."),
    (26, "INVALID_SESSION_TIMEOUT", "InvalidSessionTimeoutError", _KAFKA,
     "The session timeout is outside the range the broker allows."),
    (27, "REBALANCE_IN_PROGRESS", "RebalanceInProgressError", _KAFKA,
     "The group is rebalancing; the member must rejoin."),
    (28, "INVALID_COMMIT_OFFSET_SIZE", "InvalidCommitOffsetSizeError", _KAFKA,
     "The size of the offset commit data is not valid."),
    (29, "TOPIC_AUTHORIZATION_FAILED", "TopicAuthorizationError", _AUTHZ,
     "Not authorized to access the topic."),
    (30, "GROUP_AUTHORIZATION_FAILED", "GroupAuthorizationError", _AUTHZ,
     "Not authorized to access the group."),
    (31, "CLUSTER_AUTHORIZATION_FAILED", "ClusterAuthorizationError", _AUTHZ,
     "Not authorized for this cluster operation."),
    (32, "INVALID_TIMESTAMP", "InvalidTimestampError", _KAFKA,
     "The record timestamp is outside the range the broker accepts."),
    (33, "UNSUPPORTED_SASL_MECHANISM", "UnsupportedSaslMechanismError", _AUTHN,
     "The broker does not support this SASL mechanism."),
    (34, "ILLEGAL_SASL_STATE", "IllegalSaslStateError", _AUTHN,
     "The request is not valid in the current SASL state."),
    (35, "UNSUPPORTED_VERSION", "UnsupportedVersionError", _KAFKA,
     "The broker does not support this API version."),
    (36, "TOPIC_ALREADY_EXISTS", "TopicExistsError", _KAFKA,
     "A topic with this name already exists."),
    (37, "INVALID_PARTITIONS", "InvalidPartitionsError", _KAFKA,
     "The number of partitions is not valid."),
    (38, "INVALID_REPLICATION_FACTOR", "InvalidReplicationFactorError", _KAFKA,
     "The replication factor is below 1 or above the number of brokers."),
    (39, "INVALID_REPLICA_ASSIGNMENT", "InvalidReplicaAssignmentError", _KAFKA,
     "The replica assignment is not valid."),
    (40, "INVALID_CONFIG", "InvalidConfigurationError", _KAFKA,
     "The configuration is not valid."),
    (41, "NOT_CONTROLLER", "NotControllerError", _RETRY,
     "The broker is not the active controller."),
    (42, "INVALID_REQUEST", "InvalidRequestError", _KAFKA,
     "The broker could not parse or accept the request; see the broker log."),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", "UnsupportedForMessageFormatError", _KAFKA,
     "The broker's message format does not support the request."),
    (44, "POLICY_VIOLATION", "PolicyViolationError", _KAFKA,
     "The request violates a policy configured on the broker."),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", "OutOfOrderSequenceError", _KAFKA,
     "The broker got a sequence number out of order for this producer."),
    (46, "DUPLICATE_SEQUENCE_NUMBER", "DuplicateSequenceError", _KAFKA,
     "The broker got a duplicate sequence number for this producer."),
    (47, "INVALID_PRODUCER_EPOCH", "InvalidProducerEpochError", _RECOVER,
     "The producer epoch is older than the broker's."),
    (48, "INVALID_TXN_STATE", "InvalidTxnStateError", _KAFKA,
     "The transactional operation is not valid in the transaction's state."),
    (49, "INVALID_PRODUCER_ID_MAPPING", "InvalidPidMappingError", _RECOVER,
     "The producer id is not the one assigned to this transactional id."),
    (50, "INVALID_TRANSACTION_TIMEOUT", "InvalidTxnTimeoutError", _KAFKA,
     "The transaction timeout exceeds the broker's transaction.max.timeout.ms."),
    (51, "CONCURRENT_TRANSACTIONS", "ConcurrentTransactionsError", _RETRY,
     "Another operation on this transaction is still in progress."),
    (52, "TRANSACTION_COORDINATOR_FENCED", "TransactionCoordinatorFencedError", _KAFKA,
     "The transaction coordinator writing the marker is no longer current."),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "TransactionalIdAuthorizationError", _AUTHZ,
     "Not authorized to use this transactional id."),
    (54, "SECURITY_DISABLED", "SecurityDisabledError", _KAFKA,
     "Security features are disabled on the broker."),
    (55, "OPERATION_NOT_ATTEMPTED", "OperationNotAttemptedError", _KAFKA,
     "Not attempted because another operation in the same batch failed."),
    (56, "KAFKA_STORAGE_ERROR", "KafkaStorageError", _META,
     "The broker hit a disk error on the log of this partition."),
    (57, "LOG_DIR_NOT_FOUND", "LogDirNotFoundError", _KAFKA,
     "The log directory is not in the broker's configuration."),
    (58, "SASL_AUTHENTICATION_FAILED", "SaslAuthenticationError", _AUTHN,
     "SASL authentication failed."),
    (59, "UNKNOWN_PRODUCER_ID", "UnknownProducerIdError", _KAFKA,
     "The broker has no state for this producer id (for example after retention)."),
    (60, "REASSIGNMENT_IN_PROGRESS", "ReassignmentInProgressError", _KAFKA,
     "A partition reassignment is in progress."),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED", "DelegationTokenDisabledError", _KAFKA,
     "Delegation tokens are disabled."),
    (62, "DELEGATION_TOKEN_NOT_FOUND", "DelegationTokenNotFoundError", _KAFKA,
     "The delegation token does not exist on the broker."),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH", "DelegationTokenOwnerMismatchError", _KAFKA,
     "The principal is not the owner or a renewer of the token."),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", "UnsupportedByAuthenticationError", _KAFKA,
     "Delegation token requests are not allowed on this kind of connection."),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", "DelegationTokenAuthorizationError", _AUTHZ,
     "Not authorized for this delegation token operation."),
    (66, "DELEGATION_TOKEN_EXPIRED", "DelegationTokenExpiredError", _KAFKA,
     "The delegation token has expired."),
    (67, "INVALID_PRINCIPAL_TYPE", "InvalidPrincipalTypeError", _KAFKA,
     "The principal type is not supported."),
    (68, "NON_EMPTY_GROUP", "GroupNotEmptyError", _KAFKA,
     "The group still has members."),
    (69, "GROUP_ID_NOT_FOUND", "GroupIdNotFoundError", _KAFKA,
     "The group id does not exist."),
    (70, "FETCH_SESSION_ID_NOT_FOUND", "FetchSessionIdNotFoundError", _RETRY,
     "The fetch session id does not exist."),
    (71, "INVALID_FETCH_SESSION_EPOCH", "InvalidFetchSessionEpochError", _RETRY,
     "The fetch session epoch is not valid."),
    (72, "LISTENER_NOT_FOUND", "ListenerNotFoundError", _META,
     "The leader has no listener matching the one the metadata came from."),
    (73, "TOPIC_DELETION_DISABLED", "TopicDeletionDisabledError", _KAFKA,
     "Topic deletion is disabled on the broker."),
    (74, "FENCED_LEADER_EPOCH", "FencedLeaderEpochError", _META,
     "The request's leader epoch is older than the broker's."),
    (75, "UNKNOWN_LEADER_EPOCH", "UnknownLeaderEpochError", _RETRY,
     "The request's leader epoch is newer than the broker's."),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", "UnsupportedCompressionTypeError", _KAFKA,
     "The client does not support the partition's compression type."),
    (77, "STALE_BROKER_EPOCH", "StaleBrokerEpochError", _KAFKA,
     "The broker epoch has changed."),
    (78, "OFFSET_NOT_AVAILABLE", "OffsetNotAvailableError", _RETRY,
     "The new leader's high watermark has not caught up yet."),
    (79, "MEMBER_ID_REQUIRED", "MemberIdRequiredError", _KAFKA,
     "The member needs a member id before it can join the group."),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE", "PreferredLeaderNotAvailableError", _META,
     "The preferred leader is not available."),
    (81, "GROUP_MAX_SIZE_REACHED", "GroupMaxSizeReachedError", _KAFKA,
     "The group has reached its maximum size."),
    (82, "FENCED_INSTANCE_ID", "FencedInstanceIdError", _RECOVER,
     "Another member registered with the same group.instance.id."),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", "EligibleLeadersNotAvailableError", _META,
     "No eligible leader is available for the partition."),
    (84, "ELECTION_NOT_NEEDED", "ElectionNotNeededError", _META,
     "No leader election is needed for the partition."),
    (85, "NO_REASSIGNMENT_IN_PROGRESS", "NoReassignmentInProgressError", _KAFKA,
     "No partition reassignment is in progress."),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", "GroupSubscribedToTopicError", _KAFKA,
     "The group is subscribed to the topic, so its offsets cannot be deleted."),
    (87, "INVALID_RECORD", "InvalidRecordError", _KAFKA,
     "The broker rejected the record as not valid."),
    (88, "UNSTABLE_OFFSET_COMMIT", "UnstableOffsetCommitError", _RETRY,
     "There are pending offsets that must be cleared first."),
    (89, "THROTTLING_QUOTA_EXCEEDED", "ThrottlingQuotaExceededError", _RETRY,
     "The throttling quota has been exceeded."),
    (90, "PRODUCER_FENCED", "ProducerFencedError", _RECOVER,
     "A newer producer with the same transactional id has fenced this one."),
    (91, "RESOURCE_NOT_FOUND", "ResourceNotFoundError", _KAFKA,
     "The request refers to a resource that does not exist."),
    (92, "DUPLICATE_RESOURCE", "DuplicateResourceError", _KAFKA,
     "The request refers to the same resource twice."),
    (93, "UNACCEPTABLE_CREDENTIAL", "UnacceptableCredentialError", _KAFKA,
     "The credential does not meet the broker's criteria."),
    (94, "INCONSISTENT_VOTER_SET", "InconsistentVoterSetError", _KAFKA,
     "The sender or receiver is not one of the expected voters."),
    (95, "INVALID_UPDATE_VERSION", "InvalidUpdateVersionError", _KAFKA,
     "The update version is not valid."),
    (96, "FEATURE_UPDATE_FAILED", "FeatureUpdateFailedError", _KAFKA,
     "The finalized features could not be updated."),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE", "PrincipalDeserializationError", _KAFKA,
     "The forwarded request's principal could not be deserialized."),
    (98, "SNAPSHOT_NOT_FOUND", "SnapshotNotFoundError", _KAFKA,
     "The snapshot does not exist."),
    (99, "POSITION_OUT_OF_RANGE", "PositionOutOfRangeError", _KAFKA,
     "The position is outside the snapshot."),
    (100, "UNKNOWN_TOPIC_ID", "UnknownTopicIdError", _META,
     "The broker does not host this topic id."),
    (101, "DUPLICATE_BROKER_REGISTRATION", "DuplicateBrokerRegistrationError", _KAFKA,
     "The broker id is already registered."),
    (102, "BROKER_ID_NOT_REGISTERED", "BrokerIdNotRegisteredError", _KAFKA,
     "The broker id is not registered."),
    (103, "INCONSISTENT_TOPIC_ID", "InconsistentTopicIdError", _META,
     "The topic id of the log does not match the request's."),
    (104, "INCONSISTENT_CLUSTER_ID", "InconsistentClusterIdError", _KAFKA,
     "The cluster id of the request does not match the server's."),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", "TransactionalIdNotFoundError", _KAFKA,
     "The transactional id does not exist."),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR", "FetchSessionTopicIdError", _RETRY,
     "The fetch session used topic ids inconsistently."),
    (107, "INELIGIBLE_REPLICA", "IneligibleReplicaError", _KAFKA,
     "The new ISR contains an ineligible replica."),
    (108, "NEW_LEADER_ELECTED", "NewLeaderElectedError", _KAFKA,
     "The partition state was updated but the leader has changed."),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE", "OffsetMovedToTieredStorageError", _KAFKA,
     "The offset has moved to tiered storage."),
    (110, "FENCED_MEMBER_EPOCH", "FencedMemberEpochError", _KAFKA,
     "The member epoch is fenced; the member must rejoin."),
    (111, "UNRELEASED_INSTANCE_ID", "UnreleasedInstanceIdError", _KAFKA,
     "Another member still uses this instance id."),
    (112, "UNSUPPORTED_ASSIGNOR", "UnsupportedAssignorError", _KAFKA,
     "The group does not support this assignor or its version."),
    (113, "STALE_MEMBER_EPOCH", "StaleMemberEpochError", _KAFKA,
     "The member epoch is stale."),
    (114, "MISMATCHED_ENDPOINT_TYPE", "MismatchedEndpointTypeError", _KAFKA,
     "The request went to an endpoint of the wrong type."),
    (115, "UNSUPPORTED_ENDPOINT_TYPE", "UnsupportedEndpointTypeError", _KAFKA,
     "This endpoint type is not supported."),
    (116, "UNKNOWN_CONTROLLER_ID", "UnknownControllerIdError", _KAFKA,
     "The controller id is not known."),
    (117, "UNKNOWN_SUBSCRIPTION_ID", "UnknownSubscriptionIdError", _KAFKA,
     "The telemetry subscription id is unknown or outdated."),
    (118, "TELEMETRY_TOO_LARGE", "TelemetryTooLargeError", _KAFKA,
     "The telemetry push is larger than the broker accepts."),
    (119, "INVALID_REGISTRATION", "InvalidRegistrationError", _KAFKA,
     "The controller considers the broker registration not valid."),
    (120, "TRANSACTION_ABORTABLE", "TransactionAbortableError", _KAFKA,
     "The transaction failed; abort it to go on with this transactional id."),
    (121, "INVALID_RECORD_STATE", "InvalidRecordStateError", _KAFKA,
     "The record state is not valid for the acknowledgement."),
    (122, "SHARE_SESSION_NOT_FOUND", "ShareSessionNotFoundError", _RETRY,
     "The share session does not exist."),
    (123, "INVALID_SHARE_SESSION_EPOCH", "InvalidShareSessionEpochError", _RETRY,
     "The share session epoch is not valid."),
    (124, "FENCED_STATE_EPOCH", "FencedStateEpochError", _KAFKA,
     "The share group state epoch does not match."),
    (125, "INVALID_VOTER_KEY", "InvalidVoterKeyError", _KAFKA,
     "The voter key does not match the receiving replica's."),
    (126, "DUPLICATE_VOTER", "DuplicateVoterError", _KAFKA,
     "The voter is already in the voter set."),
    (127, "VOTER_NOT_FOUND", "VoterNotFoundError", _KAFKA,
     "The voter is not in the voter set."),
    (128, "INVALID_REGULAR_EXPRESSION", "InvalidRegularExpressionError", _KAFKA,
     "The regular expression is not valid."),
    (129, "REBOOTSTRAP_REQUIRED", "RebootstrapRequiredError", _KAFKA,
     "The client's metadata is stale; it must bootstrap again."),
    (130, "STREAMS_INVALID_TOPOLOGY", "StreamsInvalidTopologyError", _KAFKA,
     "The streams topology is not valid."),
    (131, "STREAMS_INVALID_TOPOLOGY_EPOCH", "StreamsInvalidTopologyEpochError", _KAFKA,
     "The streams topology epoch is not valid."),
    (132, "STREAMS_TOPOLOGY_FENCED", "StreamsTopologyFencedError", _KAFKA,
     "The streams topology epoch is outdated."),
    (133, "SHARE_SESSION_LIMIT_REACHED", "ShareSessionLimitReachedError", _RETRY,
     "The broker's limit of share sessions has been reached."),
)

_FAMILY_FLAGS: dict[str, tuple[bool, bool]] = {
    _KAFKA: (False, False),
    _RETRY: (True, False),
    _REFRESH: (True, False),
    _META: (True, True),
    _AUTHZ: (False, False),
    _AUTHN: (False, False),
    _RECOVER: (False, False),
}

#: Every Kafka error code, in code order, including 0 (NONE).
ERROR_TABLE: tuple[ErrorCode, ...] = tuple(
    ErrorCode(code, name, *(_FAMILY_FLAGS[base] if base else (False, False)),
              message, cls, base)
    for code, name, cls, base, message in _ROWS
)


# --------------------------------------------------------------------------------------
# One class per error code; its docstring is the default message. Generated from _ROWS
# by `python tools/gen_errors.py`; a test fails when the block and the table
# disagree. Do not edit by hand.
# --------------------------------------------------------------------------------------
# BEGIN GENERATED ERROR CLASSES


class UnknownServerError(KafkaError):
    """The broker hit an unexpected error while handling the request."""

    code = -1
    name = "UNKNOWN_SERVER_ERROR"


class OffsetOutOfRangeError(KafkaError):
    """The offset is outside the range the broker holds for this partition."""

    code = 1
    name = "OFFSET_OUT_OF_RANGE"


class CorruptMessageError(RetriableError):
    """The broker found a corrupt or oversized record, or a null key on a compacted topic."""

    code = 2
    name = "CORRUPT_MESSAGE"


class UnknownTopicOrPartitionError(InvalidMetadataError):
    """The broker does not host this topic-partition."""

    code = 3
    name = "UNKNOWN_TOPIC_OR_PARTITION"


class InvalidFetchSizeError(KafkaError):
    """The fetch size is not valid."""

    code = 4
    name = "INVALID_FETCH_SIZE"


class LeaderNotAvailableError(InvalidMetadataError):
    """The partition has no leader right now: an election is in progress."""

    code = 5
    name = "LEADER_NOT_AVAILABLE"


class NotLeaderOrFollowerError(InvalidMetadataError):
    """The broker is not the leader, or not a replica, of this partition."""

    code = 6
    name = "NOT_LEADER_OR_FOLLOWER"


class KafkaTimeoutError(RetriableError):
    """The request timed out."""

    code = 7
    name = "REQUEST_TIMED_OUT"


class BrokerNotAvailableError(KafkaError):
    """The broker is not available."""

    code = 8
    name = "BROKER_NOT_AVAILABLE"


class ReplicaNotAvailableError(InvalidMetadataError):
    """The replica is not available for this partition."""

    code = 9
    name = "REPLICA_NOT_AVAILABLE"


class RecordTooLargeError(KafkaError):
    """The record is larger than the broker or the producer accepts."""

    code = 10
    name = "MESSAGE_TOO_LARGE"


class ControllerMovedError(KafkaError):
    """The controller has moved to another broker."""

    code = 11
    name = "STALE_CONTROLLER_EPOCH"


class OffsetMetadataTooLargeError(KafkaError):
    """The metadata string of the offset commit is too large."""

    code = 12
    name = "OFFSET_METADATA_TOO_LARGE"


class NetworkError(InvalidMetadataError):
    """The connection to the broker broke before a response arrived."""

    code = 13
    name = "NETWORK_EXCEPTION"


class CoordinatorLoadInProgressError(RetriableError):
    """The coordinator is still loading its state."""

    code = 14
    name = "COORDINATOR_LOAD_IN_PROGRESS"


class CoordinatorNotAvailableError(RefreshRetriableError):
    """The coordinator is not available."""

    code = 15
    name = "COORDINATOR_NOT_AVAILABLE"


class NotCoordinatorError(RefreshRetriableError):
    """The broker is not the coordinator for this group or transactional id."""

    code = 16
    name = "NOT_COORDINATOR"


class InvalidTopicError(KafkaError):
    """The topic name is not valid, or the topic is internal."""

    code = 17
    name = "INVALID_TOPIC_EXCEPTION"


class RecordBatchTooLargeError(KafkaError):
    """The record batch is larger than the broker's segment size."""

    code = 18
    name = "RECORD_LIST_TOO_LARGE"


class NotEnoughReplicasError(RetriableError):
    """Rejected: fewer in-sync replicas than min.insync.replicas."""

    code = 19
    name = "NOT_ENOUGH_REPLICAS"


class NotEnoughReplicasAfterAppendError(RetriableError):
    """Written, but to fewer in-sync replicas than min.insync.replicas."""

    code = 20
    name = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"


class InvalidRequiredAcksError(KafkaError):
    """The acks value of the produce request is not valid."""

    code = 21
    name = "INVALID_REQUIRED_ACKS"


class IllegalGenerationError(ApplicationRecoverableError):
    """The group generation id is not valid."""

    code = 22
    name = "ILLEGAL_GENERATION"


class InconsistentGroupProtocolError(KafkaError):
    """The member's group protocols do not match those of the group."""

    code = 23
    name = "INCONSISTENT_GROUP_PROTOCOL"


class InvalidGroupIdError(KafkaError):
    """The group id is not valid."""

    code = 24
    name = "INVALID_GROUP_ID"


class UnknownMemberIdError(ApplicationRecoverableError):
    """The coordinator does not know this member."""

    code = 25
    name = "UNKNOWN_MEMBER_ID"


class InvalidSessionTimeoutError(KafkaError):
    """The session timeout is outside the range the broker allows."""

    code = 26
    name = "INVALID_SESSION_TIMEOUT"


class RebalanceInProgressError(KafkaError):
    """The group is rebalancing; the member must rejoin."""

    code = 27
    name = "REBALANCE_IN_PROGRESS"


class InvalidCommitOffsetSizeError(KafkaError):
    """The size of the offset commit data is not valid."""

    code = 28
    name = "INVALID_COMMIT_OFFSET_SIZE"


class TopicAuthorizationError(AuthorizationError):
    """Not authorized to access the topic."""

    code = 29
    name = "TOPIC_AUTHORIZATION_FAILED"


class GroupAuthorizationError(AuthorizationError):
    """Not authorized to access the group."""

    code = 30
    name = "GROUP_AUTHORIZATION_FAILED"


class ClusterAuthorizationError(AuthorizationError):
    """Not authorized for this cluster operation."""

    code = 31
    name = "CLUSTER_AUTHORIZATION_FAILED"


class InvalidTimestampError(KafkaError):
    """The record timestamp is outside the range the broker accepts."""

    code = 32
    name = "INVALID_TIMESTAMP"


class UnsupportedSaslMechanismError(AuthenticationError):
    """The broker does not support this SASL mechanism."""

    code = 33
    name = "UNSUPPORTED_SASL_MECHANISM"


class IllegalSaslStateError(AuthenticationError):
    """The request is not valid in the current SASL state."""

    code = 34
    name = "ILLEGAL_SASL_STATE"


class UnsupportedVersionError(KafkaError):
    """The broker does not support this API version."""

    code = 35
    name = "UNSUPPORTED_VERSION"


class TopicExistsError(KafkaError):
    """A topic with this name already exists."""

    code = 36
    name = "TOPIC_ALREADY_EXISTS"


class InvalidPartitionsError(KafkaError):
    """The number of partitions is not valid."""

    code = 37
    name = "INVALID_PARTITIONS"


class InvalidReplicationFactorError(KafkaError):
    """The replication factor is below 1 or above the number of brokers."""

    code = 38
    name = "INVALID_REPLICATION_FACTOR"


class InvalidReplicaAssignmentError(KafkaError):
    """The replica assignment is not valid."""

    code = 39
    name = "INVALID_REPLICA_ASSIGNMENT"


class InvalidConfigurationError(KafkaError):
    """The configuration is not valid."""

    code = 40
    name = "INVALID_CONFIG"


class NotControllerError(RetriableError):
    """The broker is not the active controller."""

    code = 41
    name = "NOT_CONTROLLER"


class InvalidRequestError(KafkaError):
    """The broker could not parse or accept the request; see the broker log."""

    code = 42
    name = "INVALID_REQUEST"


class UnsupportedForMessageFormatError(KafkaError):
    """The broker's message format does not support the request."""

    code = 43
    name = "UNSUPPORTED_FOR_MESSAGE_FORMAT"


class PolicyViolationError(KafkaError):
    """The request violates a policy configured on the broker."""

    code = 44
    name = "POLICY_VIOLATION"


class OutOfOrderSequenceError(KafkaError):
    """The broker got a sequence number out of order for this producer."""

    code = 45
    name = "OUT_OF_ORDER_SEQUENCE_NUMBER"


class DuplicateSequenceError(KafkaError):
    """The broker got a duplicate sequence number for this producer."""

    code = 46
    name = "DUPLICATE_SEQUENCE_NUMBER"


class InvalidProducerEpochError(ApplicationRecoverableError):
    """The producer epoch is older than the broker's."""

    code = 47
    name = "INVALID_PRODUCER_EPOCH"


class InvalidTxnStateError(KafkaError):
    """The transactional operation is not valid in the transaction's state."""

    code = 48
    name = "INVALID_TXN_STATE"


class InvalidPidMappingError(ApplicationRecoverableError):
    """The producer id is not the one assigned to this transactional id."""

    code = 49
    name = "INVALID_PRODUCER_ID_MAPPING"


class InvalidTxnTimeoutError(KafkaError):
    """The transaction timeout exceeds the broker's transaction.max.timeout.ms."""

    code = 50
    name = "INVALID_TRANSACTION_TIMEOUT"


class ConcurrentTransactionsError(RetriableError):
    """Another operation on this transaction is still in progress."""

    code = 51
    name = "CONCURRENT_TRANSACTIONS"


class TransactionCoordinatorFencedError(KafkaError):
    """The transaction coordinator writing the marker is no longer current."""

    code = 52
    name = "TRANSACTION_COORDINATOR_FENCED"


class TransactionalIdAuthorizationError(AuthorizationError):
    """Not authorized to use this transactional id."""

    code = 53
    name = "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"


class SecurityDisabledError(KafkaError):
    """Security features are disabled on the broker."""

    code = 54
    name = "SECURITY_DISABLED"


class OperationNotAttemptedError(KafkaError):
    """Not attempted because another operation in the same batch failed."""

    code = 55
    name = "OPERATION_NOT_ATTEMPTED"


class KafkaStorageError(InvalidMetadataError):
    """The broker hit a disk error on the log of this partition."""

    code = 56
    name = "KAFKA_STORAGE_ERROR"


class LogDirNotFoundError(KafkaError):
    """The log directory is not in the broker's configuration."""

    code = 57
    name = "LOG_DIR_NOT_FOUND"


class SaslAuthenticationError(AuthenticationError):
    """SASL authentication failed."""

    code = 58
    name = "SASL_AUTHENTICATION_FAILED"


class UnknownProducerIdError(KafkaError):
    """The broker has no state for this producer id (for example after retention)."""

    code = 59
    name = "UNKNOWN_PRODUCER_ID"


class ReassignmentInProgressError(KafkaError):
    """A partition reassignment is in progress."""

    code = 60
    name = "REASSIGNMENT_IN_PROGRESS"


class DelegationTokenDisabledError(KafkaError):
    """Delegation tokens are disabled."""

    code = 61
    name = "DELEGATION_TOKEN_AUTH_DISABLED"


class DelegationTokenNotFoundError(KafkaError):
    """The delegation token does not exist on the broker."""

    code = 62
    name = "DELEGATION_TOKEN_NOT_FOUND"


class DelegationTokenOwnerMismatchError(KafkaError):
    """The principal is not the owner or a renewer of the token."""

    code = 63
    name = "DELEGATION_TOKEN_OWNER_MISMATCH"


class UnsupportedByAuthenticationError(KafkaError):
    """Delegation token requests are not allowed on this kind of connection."""

    code = 64
    name = "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"


class DelegationTokenAuthorizationError(AuthorizationError):
    """Not authorized for this delegation token operation."""

    code = 65
    name = "DELEGATION_TOKEN_AUTHORIZATION_FAILED"


class DelegationTokenExpiredError(KafkaError):
    """The delegation token has expired."""

    code = 66
    name = "DELEGATION_TOKEN_EXPIRED"


class InvalidPrincipalTypeError(KafkaError):
    """The principal type is not supported."""

    code = 67
    name = "INVALID_PRINCIPAL_TYPE"


class GroupNotEmptyError(KafkaError):
    """The group still has members."""

    code = 68
    name = "NON_EMPTY_GROUP"


class GroupIdNotFoundError(KafkaError):
    """The group id does not exist."""

    code = 69
    name = "GROUP_ID_NOT_FOUND"


class FetchSessionIdNotFoundError(RetriableError):
    """The fetch session id does not exist."""

    code = 70
    name = "FETCH_SESSION_ID_NOT_FOUND"


class InvalidFetchSessionEpochError(RetriableError):
    """The fetch session epoch is not valid."""

    code = 71
    name = "INVALID_FETCH_SESSION_EPOCH"


class ListenerNotFoundError(InvalidMetadataError):
    """The leader has no listener matching the one the metadata came from."""

    code = 72
    name = "LISTENER_NOT_FOUND"


class TopicDeletionDisabledError(KafkaError):
    """Topic deletion is disabled on the broker."""

    code = 73
    name = "TOPIC_DELETION_DISABLED"


class FencedLeaderEpochError(InvalidMetadataError):
    """The request's leader epoch is older than the broker's."""

    code = 74
    name = "FENCED_LEADER_EPOCH"


class UnknownLeaderEpochError(RetriableError):
    """The request's leader epoch is newer than the broker's."""

    code = 75
    name = "UNKNOWN_LEADER_EPOCH"


class UnsupportedCompressionTypeError(KafkaError):
    """The client does not support the partition's compression type."""

    code = 76
    name = "UNSUPPORTED_COMPRESSION_TYPE"


class StaleBrokerEpochError(KafkaError):
    """The broker epoch has changed."""

    code = 77
    name = "STALE_BROKER_EPOCH"


class OffsetNotAvailableError(RetriableError):
    """The new leader's high watermark has not caught up yet."""

    code = 78
    name = "OFFSET_NOT_AVAILABLE"


class MemberIdRequiredError(KafkaError):
    """The member needs a member id before it can join the group."""

    code = 79
    name = "MEMBER_ID_REQUIRED"


class PreferredLeaderNotAvailableError(InvalidMetadataError):
    """The preferred leader is not available."""

    code = 80
    name = "PREFERRED_LEADER_NOT_AVAILABLE"


class GroupMaxSizeReachedError(KafkaError):
    """The group has reached its maximum size."""

    code = 81
    name = "GROUP_MAX_SIZE_REACHED"


class FencedInstanceIdError(ApplicationRecoverableError):
    """Another member registered with the same group.instance.id."""

    code = 82
    name = "FENCED_INSTANCE_ID"


class EligibleLeadersNotAvailableError(InvalidMetadataError):
    """No eligible leader is available for the partition."""

    code = 83
    name = "ELIGIBLE_LEADERS_NOT_AVAILABLE"


class ElectionNotNeededError(InvalidMetadataError):
    """No leader election is needed for the partition."""

    code = 84
    name = "ELECTION_NOT_NEEDED"


class NoReassignmentInProgressError(KafkaError):
    """No partition reassignment is in progress."""

    code = 85
    name = "NO_REASSIGNMENT_IN_PROGRESS"


class GroupSubscribedToTopicError(KafkaError):
    """The group is subscribed to the topic, so its offsets cannot be deleted."""

    code = 86
    name = "GROUP_SUBSCRIBED_TO_TOPIC"


class InvalidRecordError(KafkaError):
    """The broker rejected the record as not valid."""

    code = 87
    name = "INVALID_RECORD"


class UnstableOffsetCommitError(RetriableError):
    """There are pending offsets that must be cleared first."""

    code = 88
    name = "UNSTABLE_OFFSET_COMMIT"


class ThrottlingQuotaExceededError(RetriableError):
    """The throttling quota has been exceeded."""

    code = 89
    name = "THROTTLING_QUOTA_EXCEEDED"


class ProducerFencedError(ApplicationRecoverableError):
    """A newer producer with the same transactional id has fenced this one."""

    code = 90
    name = "PRODUCER_FENCED"


class ResourceNotFoundError(KafkaError):
    """The request refers to a resource that does not exist."""

    code = 91
    name = "RESOURCE_NOT_FOUND"


class DuplicateResourceError(KafkaError):
    """The request refers to the same resource twice."""

    code = 92
    name = "DUPLICATE_RESOURCE"


class UnacceptableCredentialError(KafkaError):
    """The credential does not meet the broker's criteria."""

    code = 93
    name = "UNACCEPTABLE_CREDENTIAL"


class InconsistentVoterSetError(KafkaError):
    """The sender or receiver is not one of the expected voters."""

    code = 94
    name = "INCONSISTENT_VOTER_SET"


class InvalidUpdateVersionError(KafkaError):
    """The update version is not valid."""

    code = 95
    name = "INVALID_UPDATE_VERSION"


class FeatureUpdateFailedError(KafkaError):
    """The finalized features could not be updated."""

    code = 96
    name = "FEATURE_UPDATE_FAILED"


class PrincipalDeserializationError(KafkaError):
    """The forwarded request's principal could not be deserialized."""

    code = 97
    name = "PRINCIPAL_DESERIALIZATION_FAILURE"


class SnapshotNotFoundError(KafkaError):
    """The snapshot does not exist."""

    code = 98
    name = "SNAPSHOT_NOT_FOUND"


class PositionOutOfRangeError(KafkaError):
    """The position is outside the snapshot."""

    code = 99
    name = "POSITION_OUT_OF_RANGE"


class UnknownTopicIdError(InvalidMetadataError):
    """The broker does not host this topic id."""

    code = 100
    name = "UNKNOWN_TOPIC_ID"


class DuplicateBrokerRegistrationError(KafkaError):
    """The broker id is already registered."""

    code = 101
    name = "DUPLICATE_BROKER_REGISTRATION"


class BrokerIdNotRegisteredError(KafkaError):
    """The broker id is not registered."""

    code = 102
    name = "BROKER_ID_NOT_REGISTERED"


class InconsistentTopicIdError(InvalidMetadataError):
    """The topic id of the log does not match the request's."""

    code = 103
    name = "INCONSISTENT_TOPIC_ID"


class InconsistentClusterIdError(KafkaError):
    """The cluster id of the request does not match the server's."""

    code = 104
    name = "INCONSISTENT_CLUSTER_ID"


class TransactionalIdNotFoundError(KafkaError):
    """The transactional id does not exist."""

    code = 105
    name = "TRANSACTIONAL_ID_NOT_FOUND"


class FetchSessionTopicIdError(RetriableError):
    """The fetch session used topic ids inconsistently."""

    code = 106
    name = "FETCH_SESSION_TOPIC_ID_ERROR"


class IneligibleReplicaError(KafkaError):
    """The new ISR contains an ineligible replica."""

    code = 107
    name = "INELIGIBLE_REPLICA"


class NewLeaderElectedError(KafkaError):
    """The partition state was updated but the leader has changed."""

    code = 108
    name = "NEW_LEADER_ELECTED"


class OffsetMovedToTieredStorageError(KafkaError):
    """The offset has moved to tiered storage."""

    code = 109
    name = "OFFSET_MOVED_TO_TIERED_STORAGE"


class FencedMemberEpochError(KafkaError):
    """The member epoch is fenced; the member must rejoin."""

    code = 110
    name = "FENCED_MEMBER_EPOCH"


class UnreleasedInstanceIdError(KafkaError):
    """Another member still uses this instance id."""

    code = 111
    name = "UNRELEASED_INSTANCE_ID"


class UnsupportedAssignorError(KafkaError):
    """The group does not support this assignor or its version."""

    code = 112
    name = "UNSUPPORTED_ASSIGNOR"


class StaleMemberEpochError(KafkaError):
    """The member epoch is stale."""

    code = 113
    name = "STALE_MEMBER_EPOCH"


class MismatchedEndpointTypeError(KafkaError):
    """The request went to an endpoint of the wrong type."""

    code = 114
    name = "MISMATCHED_ENDPOINT_TYPE"


class UnsupportedEndpointTypeError(KafkaError):
    """This endpoint type is not supported."""

    code = 115
    name = "UNSUPPORTED_ENDPOINT_TYPE"


class UnknownControllerIdError(KafkaError):
    """The controller id is not known."""

    code = 116
    name = "UNKNOWN_CONTROLLER_ID"


class UnknownSubscriptionIdError(KafkaError):
    """The telemetry subscription id is unknown or outdated."""

    code = 117
    name = "UNKNOWN_SUBSCRIPTION_ID"


class TelemetryTooLargeError(KafkaError):
    """The telemetry push is larger than the broker accepts."""

    code = 118
    name = "TELEMETRY_TOO_LARGE"


class InvalidRegistrationError(KafkaError):
    """The controller considers the broker registration not valid."""

    code = 119
    name = "INVALID_REGISTRATION"


class TransactionAbortableError(KafkaError):
    """The transaction failed; abort it to go on with this transactional id."""

    code = 120
    name = "TRANSACTION_ABORTABLE"


class InvalidRecordStateError(KafkaError):
    """The record state is not valid for the acknowledgement."""

    code = 121
    name = "INVALID_RECORD_STATE"


class ShareSessionNotFoundError(RetriableError):
    """The share session does not exist."""

    code = 122
    name = "SHARE_SESSION_NOT_FOUND"


class InvalidShareSessionEpochError(RetriableError):
    """The share session epoch is not valid."""

    code = 123
    name = "INVALID_SHARE_SESSION_EPOCH"


class FencedStateEpochError(KafkaError):
    """The share group state epoch does not match."""

    code = 124
    name = "FENCED_STATE_EPOCH"


class InvalidVoterKeyError(KafkaError):
    """The voter key does not match the receiving replica's."""

    code = 125
    name = "INVALID_VOTER_KEY"


class DuplicateVoterError(KafkaError):
    """The voter is already in the voter set."""

    code = 126
    name = "DUPLICATE_VOTER"


class VoterNotFoundError(KafkaError):
    """The voter is not in the voter set."""

    code = 127
    name = "VOTER_NOT_FOUND"


class InvalidRegularExpressionError(KafkaError):
    """The regular expression is not valid."""

    code = 128
    name = "INVALID_REGULAR_EXPRESSION"


class RebootstrapRequiredError(KafkaError):
    """The client's metadata is stale; it must bootstrap again."""

    code = 129
    name = "REBOOTSTRAP_REQUIRED"


class StreamsInvalidTopologyError(KafkaError):
    """The streams topology is not valid."""

    code = 130
    name = "STREAMS_INVALID_TOPOLOGY"


class StreamsInvalidTopologyEpochError(KafkaError):
    """The streams topology epoch is not valid."""

    code = 131
    name = "STREAMS_INVALID_TOPOLOGY_EPOCH"


class StreamsTopologyFencedError(KafkaError):
    """The streams topology epoch is outdated."""

    code = 132
    name = "STREAMS_TOPOLOGY_FENCED"


class ShareSessionLimitReachedError(RetriableError):
    """The broker's limit of share sessions has been reached."""

    code = 133
    name = "SHARE_SESSION_LIMIT_REACHED"
# END GENERATED ERROR CLASSES


# --------------------------------------------------------------------------------------
# Client-side errors
# --------------------------------------------------------------------------------------


class BufferFullError(KafkaTimeoutError):
    """No buffer memory freed up within max.block.ms (Java BufferExhaustedException)."""

    default_message = "Buffer memory stayed full for max.block.ms."


class SslAuthenticationError(AuthenticationError):
    """The TLS handshake with a broker failed (Java SslAuthenticationException)."""

    # The message names the broker and the reason: an untrusted or expired
    # certificate, a host name the certificate does not cover, a non-TLS listener.

    name = "SSL_AUTHENTICATION_FAILED"
    default_message = "The TLS handshake with the broker failed."


class SecurityProtocolMismatchError(AuthenticationError):
    """The broker's listener speaks another security protocol than security.protocol."""

    # TLS against a PLAINTEXT port, PLAINTEXT or SASL against a TLS port, SASL
    # against a listener without SASL.

    name = "SECURITY_PROTOCOL_MISMATCH"
    default_message = "The listener does not speak the configured security.protocol."


class OAuthTokenError(AuthenticationError):
    """No OAUTHBEARER token could be obtained from the token endpoint or callback."""

    name = "OAUTH_TOKEN_UNAVAILABLE"
    default_message = "No OAUTHBEARER token could be obtained."


class NoBrokersAvailableError(RetriableError):
    """None of the bootstrap servers could be reached; the message names the servers tried."""

    name = "NO_BROKERS_AVAILABLE"
    default_message = "No bootstrap server could be reached."

    def __init__(self, message: str | None = None, *, servers: tuple[str, ...] = (),
                 code: int | None = None) -> None:
        if message is None and servers:
            message = "no bootstrap server could be reached; tried " + ", ".join(servers)
        super().__init__(message, code=code)
        self.servers = tuple(servers)


class MalformedResponseError(ProtocolError, NetworkError):
    """An unreadable response (bad size, correlation id or body): the connection closes."""

    # The request it answered (``correlation_id``) may have been carried out by the
    # broker, as when a connection drops with a request in flight, so it is also a
    # NetworkError: retried, never taken for a rejection (an idempotent producer's
    # retry is then answered as a duplicate, not written twice).

    def __init__(self, message: str | None = None, *, correlation_id: int = -1) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id


class WorkerLostError(KafkaError):
    """A worker process of the sharded producer died before its records were acknowledged."""

    name = "WORKER_LOST"
    default_message = "A producer worker process died before the records were acknowledged."


class TransactionAbortedError(KafkaError):
    """The record was in a transaction that was aborted before it was sent."""

    name = "TRANSACTION_ABORTED"
    default_message = "Failing batch since the transaction was aborted."


# --------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------


def _bind_table() -> dict[int, type[KafkaError]]:
    """Give each generated class its name and message, and check it against the table."""
    by_code: dict[int, type[KafkaError]] = {}
    module = globals()
    for row in ERROR_TABLE:
        if row.class_name is None or row.base_name is None:
            continue
        cls = module[row.class_name]
        if (cls.__dict__.get("code"), cls.__dict__.get("name"), cls.__bases__) != (
                row.code, row.name, (module[row.base_name],)):
            raise AssertionError(f"class {row.class_name} does not match the row for {row.code}")
        cls.default_message = row.message
        if (cls.retriable, cls.invalid_metadata) != (row.retriable, row.invalid_metadata):
            raise AssertionError(f"class {row.class_name} has the wrong family for {row.code}")
        by_code[row.code] = cls
    return by_code


_CLASS_BY_CODE = _bind_table()

#: Code -> table row, for every code including 0.
ERRORS_BY_CODE: Mapping[int, ErrorCode] = MappingProxyType({r.code: r for r in ERROR_TABLE})
#: NAME -> table row.
ERRORS_BY_NAME: Mapping[str, ErrorCode] = MappingProxyType({r.name: r for r in ERROR_TABLE})

#: Alias in the code's own naming, for readers who look for it.
RequestTimedOutError = KafkaTimeoutError


def error_class_for_code(code: int) -> type[KafkaError]:
    """The exception class for a Kafka error code; UnknownServerError for unknown codes."""
    if code == 0:
        raise ValueError("error code 0 (NONE) is not an error")
    return _CLASS_BY_CODE.get(code, UnknownServerError)


def error_for_code(code: int, message: str | None = None) -> KafkaError:
    """An exception instance for a non-zero Kafka error code from a response.

    An unknown code gives an ``UnknownServerError`` that keeps the code, so that a
    newer broker's error is reported rather than lost (Java maps it to
    UNKNOWN_SERVER_ERROR and logs a warning).
    """
    cls = _CLASS_BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    if code == 0:
        raise ValueError("error code 0 (NONE) is not an error")
    text = f"unknown Kafka error code {code}"
    if message:
        text = f"{text}: {message}"
    return UnknownServerError(text, code=code)


def is_retriable(code: int) -> bool:
    """Whether a send that failed with this code may succeed if sent again."""
    row = ERRORS_BY_CODE.get(code)
    return row is not None and row.retriable


def is_invalid_metadata(code: int) -> bool:
    """Whether this code means the metadata should be refreshed before retrying."""
    row = ERRORS_BY_CODE.get(code)
    return row is not None and row.invalid_metadata


__all__ = [  # the table's names, then every exception class
    "ERRORS_BY_CODE",
    "ERRORS_BY_NAME",
    "ERROR_TABLE",
    "ErrorCode",
    "error_class_for_code",
    "error_for_code",
    "is_invalid_metadata",
    "is_retriable",
    *sorted(name for name, obj in list(globals().items())
            if isinstance(obj, type) and issubclass(obj, FastprodError)),
]
