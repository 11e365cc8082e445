"""Unit tests of fastprod.errors: the Kafka error-code table and the exception classes.

The expected facts come from Kafka 4.3.1's ``org.apache.kafka.common.protocol.Errors``
and the ``extends`` chain of each exception class in ``org.apache.kafka.common.errors``
(``RetriableException``, ``InvalidMetadataException``).

The class block of fastprod/errors.py is generated from its table by tools/gen_errors.py
(``python tools/gen_errors.py`` after editing the table; ``--check`` says whether it is stale).
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ERRORS_PY = ROOT / "fastprod" / "errors.py"
GENERATOR = ROOT / "tools" / "gen_errors.py"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_errors", GENERATOR)
    assert spec is not None and spec.loader is not None, f"cannot load {GENERATOR}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_errors = _load_generator()

from fastprod import errors  # noqa: E402
from fastprod.errors import (  # noqa: E402
    ERROR_TABLE,
    ERRORS_BY_CODE,
    AuthenticationError,
    AuthorizationError,
    BufferFullError,
    ConfigError,
    CorruptRecordError,
    FastprodError,
    IllegalStateError,
    InvalidMetadataError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailableError,
    NotEnoughReplicasError,
    NotLeaderOrFollowerError,
    ProducerClosedError,
    ProducerFencedError,
    ProtocolError,
    RecordTooLargeError,
    RetriableError,
    SerializationError,
    UnknownServerError,
    WorkerLostError,
    error_class_for_code,
    error_for_code,
)

# ----------------------------------------------------------------------------------------
# Kafka 4.3.1 Errors: code -> (NAME, Java exception class, retriable, invalid metadata).
# Transcribed from Errors.java and the exception classes' superclasses.
# ----------------------------------------------------------------------------------------

R, M, N = "retriable", "invalid_metadata", "final"
JAVA_ERRORS: dict[int, tuple[str, str, str]] = {
    -1: ("UNKNOWN_SERVER_ERROR", "UnknownServerException", N),
    1: ("OFFSET_OUT_OF_RANGE", "OffsetOutOfRangeException", N),
    2: ("CORRUPT_MESSAGE", "CorruptRecordException", R),
    3: ("UNKNOWN_TOPIC_OR_PARTITION", "UnknownTopicOrPartitionException", M),
    4: ("INVALID_FETCH_SIZE", "InvalidFetchSizeException", N),
    5: ("LEADER_NOT_AVAILABLE", "LeaderNotAvailableException", M),
    6: ("NOT_LEADER_OR_FOLLOWER", "NotLeaderOrFollowerException", M),
    7: ("REQUEST_TIMED_OUT", "TimeoutException", R),
    8: ("BROKER_NOT_AVAILABLE", "BrokerNotAvailableException", N),
    9: ("REPLICA_NOT_AVAILABLE", "ReplicaNotAvailableException", M),
    10: ("MESSAGE_TOO_LARGE", "RecordTooLargeException", N),
    11: ("STALE_CONTROLLER_EPOCH", "ControllerMovedException", N),
    12: ("OFFSET_METADATA_TOO_LARGE", "OffsetMetadataTooLarge", N),
    13: ("NETWORK_EXCEPTION", "NetworkException", M),
    14: ("COORDINATOR_LOAD_IN_PROGRESS", "CoordinatorLoadInProgressException", R),
    15: ("COORDINATOR_NOT_AVAILABLE", "CoordinatorNotAvailableException", R),
    16: ("NOT_COORDINATOR", "NotCoordinatorException", R),
    17: ("INVALID_TOPIC_EXCEPTION", "InvalidTopicException", N),
    18: ("RECORD_LIST_TOO_LARGE", "RecordBatchTooLargeException", N),
    19: ("NOT_ENOUGH_REPLICAS", "NotEnoughReplicasException", R),
    20: ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", "NotEnoughReplicasAfterAppendException", R),
    21: ("INVALID_REQUIRED_ACKS", "InvalidRequiredAcksException", N),
    22: ("ILLEGAL_GENERATION", "IllegalGenerationException", N),
    23: ("INCONSISTENT_GROUP_PROTOCOL", "InconsistentGroupProtocolException", N),
    24: ("INVALID_GROUP_ID", "InvalidGroupIdException", N),
    25: ("UNKNOWN_MEMBER_ID", "UnknownMemberIdException", N),
    26: ("INVALID_SESSION_TIMEOUT", "InvalidSessionTimeoutException", N),
    27: ("REBALANCE_IN_PROGRESS", "RebalanceInProgressException", N),
    28: ("INVALID_COMMIT_OFFSET_SIZE", "InvalidCommitOffsetSizeException", N),
    29: ("TOPIC_AUTHORIZATION_FAILED", "TopicAuthorizationException", N),
    30: ("GROUP_AUTHORIZATION_FAILED", "GroupAuthorizationException", N),
    31: ("CLUSTER_AUTHORIZATION_FAILED", "ClusterAuthorizationException", N),
    32: ("INVALID_TIMESTAMP", "InvalidTimestampException", N),
    33: ("UNSUPPORTED_SASL_MECHANISM", "UnsupportedSaslMechanismException", N),
    34: ("ILLEGAL_SASL_STATE", "IllegalSaslStateException", N),
    35: ("UNSUPPORTED_VERSION", "UnsupportedVersionException", N),
    36: ("TOPIC_ALREADY_EXISTS", "TopicExistsException", N),
    37: ("INVALID_PARTITIONS", "InvalidPartitionsException", N),
    38: ("INVALID_REPLICATION_FACTOR", "InvalidReplicationFactorException", N),
    39: ("INVALID_REPLICA_ASSIGNMENT", "InvalidReplicaAssignmentException", N),
    40: ("INVALID_CONFIG", "InvalidConfigurationException", N),
    41: ("NOT_CONTROLLER", "NotControllerException", R),
    42: ("INVALID_REQUEST", "InvalidRequestException", N),
    43: ("UNSUPPORTED_FOR_MESSAGE_FORMAT", "UnsupportedForMessageFormatException", N),
    44: ("POLICY_VIOLATION", "PolicyViolationException", N),
    45: ("OUT_OF_ORDER_SEQUENCE_NUMBER", "OutOfOrderSequenceException", N),
    46: ("DUPLICATE_SEQUENCE_NUMBER", "DuplicateSequenceException", N),
    47: ("INVALID_PRODUCER_EPOCH", "InvalidProducerEpochException", N),
    48: ("INVALID_TXN_STATE", "InvalidTxnStateException", N),
    49: ("INVALID_PRODUCER_ID_MAPPING", "InvalidPidMappingException", N),
    50: ("INVALID_TRANSACTION_TIMEOUT", "InvalidTxnTimeoutException", N),
    51: ("CONCURRENT_TRANSACTIONS", "ConcurrentTransactionsException", R),
    52: ("TRANSACTION_COORDINATOR_FENCED", "TransactionCoordinatorFencedException", N),
    53: ("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "TransactionalIdAuthorizationException", N),
    54: ("SECURITY_DISABLED", "SecurityDisabledException", N),
    55: ("OPERATION_NOT_ATTEMPTED", "OperationNotAttemptedException", N),
    56: ("KAFKA_STORAGE_ERROR", "KafkaStorageException", M),
    57: ("LOG_DIR_NOT_FOUND", "LogDirNotFoundException", N),
    58: ("SASL_AUTHENTICATION_FAILED", "SaslAuthenticationException", N),
    59: ("UNKNOWN_PRODUCER_ID", "UnknownProducerIdException", N),
    60: ("REASSIGNMENT_IN_PROGRESS", "ReassignmentInProgressException", N),
    61: ("DELEGATION_TOKEN_AUTH_DISABLED", "DelegationTokenDisabledException", N),
    62: ("DELEGATION_TOKEN_NOT_FOUND", "DelegationTokenNotFoundException", N),
    63: ("DELEGATION_TOKEN_OWNER_MISMATCH", "DelegationTokenOwnerMismatchException", N),
    64: ("DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", "UnsupportedByAuthenticationException", N),
    65: ("DELEGATION_TOKEN_AUTHORIZATION_FAILED", "DelegationTokenAuthorizationException", N),
    66: ("DELEGATION_TOKEN_EXPIRED", "DelegationTokenExpiredException", N),
    67: ("INVALID_PRINCIPAL_TYPE", "InvalidPrincipalTypeException", N),
    68: ("NON_EMPTY_GROUP", "GroupNotEmptyException", N),
    69: ("GROUP_ID_NOT_FOUND", "GroupIdNotFoundException", N),
    70: ("FETCH_SESSION_ID_NOT_FOUND", "FetchSessionIdNotFoundException", R),
    71: ("INVALID_FETCH_SESSION_EPOCH", "InvalidFetchSessionEpochException", R),
    72: ("LISTENER_NOT_FOUND", "ListenerNotFoundException", M),
    73: ("TOPIC_DELETION_DISABLED", "TopicDeletionDisabledException", N),
    74: ("FENCED_LEADER_EPOCH", "FencedLeaderEpochException", M),
    75: ("UNKNOWN_LEADER_EPOCH", "UnknownLeaderEpochException", R),
    76: ("UNSUPPORTED_COMPRESSION_TYPE", "UnsupportedCompressionTypeException", N),
    77: ("STALE_BROKER_EPOCH", "StaleBrokerEpochException", N),
    78: ("OFFSET_NOT_AVAILABLE", "OffsetNotAvailableException", R),
    79: ("MEMBER_ID_REQUIRED", "MemberIdRequiredException", N),
    80: ("PREFERRED_LEADER_NOT_AVAILABLE", "PreferredLeaderNotAvailableException", M),
    81: ("GROUP_MAX_SIZE_REACHED", "GroupMaxSizeReachedException", N),
    82: ("FENCED_INSTANCE_ID", "FencedInstanceIdException", N),
    83: ("ELIGIBLE_LEADERS_NOT_AVAILABLE", "EligibleLeadersNotAvailableException", M),
    84: ("ELECTION_NOT_NEEDED", "ElectionNotNeededException", M),
    85: ("NO_REASSIGNMENT_IN_PROGRESS", "NoReassignmentInProgressException", N),
    86: ("GROUP_SUBSCRIBED_TO_TOPIC", "GroupSubscribedToTopicException", N),
    87: ("INVALID_RECORD", "InvalidRecordException", N),
    88: ("UNSTABLE_OFFSET_COMMIT", "UnstableOffsetCommitException", R),
    89: ("THROTTLING_QUOTA_EXCEEDED", "ThrottlingQuotaExceededException", R),
    90: ("PRODUCER_FENCED", "ProducerFencedException", N),
    91: ("RESOURCE_NOT_FOUND", "ResourceNotFoundException", N),
    92: ("DUPLICATE_RESOURCE", "DuplicateResourceException", N),
    93: ("UNACCEPTABLE_CREDENTIAL", "UnacceptableCredentialException", N),
    94: ("INCONSISTENT_VOTER_SET", "InconsistentVoterSetException", N),
    95: ("INVALID_UPDATE_VERSION", "InvalidUpdateVersionException", N),
    96: ("FEATURE_UPDATE_FAILED", "FeatureUpdateFailedException", N),
    97: ("PRINCIPAL_DESERIALIZATION_FAILURE", "PrincipalDeserializationException", N),
    98: ("SNAPSHOT_NOT_FOUND", "SnapshotNotFoundException", N),
    99: ("POSITION_OUT_OF_RANGE", "PositionOutOfRangeException", N),
    100: ("UNKNOWN_TOPIC_ID", "UnknownTopicIdException", M),
    101: ("DUPLICATE_BROKER_REGISTRATION", "DuplicateBrokerRegistrationException", N),
    102: ("BROKER_ID_NOT_REGISTERED", "BrokerIdNotRegisteredException", N),
    103: ("INCONSISTENT_TOPIC_ID", "InconsistentTopicIdException", M),
    104: ("INCONSISTENT_CLUSTER_ID", "InconsistentClusterIdException", N),
    105: ("TRANSACTIONAL_ID_NOT_FOUND", "TransactionalIdNotFoundException", N),
    106: ("FETCH_SESSION_TOPIC_ID_ERROR", "FetchSessionTopicIdException", R),
    107: ("INELIGIBLE_REPLICA", "IneligibleReplicaException", N),
    108: ("NEW_LEADER_ELECTED", "NewLeaderElectedException", N),
    109: ("OFFSET_MOVED_TO_TIERED_STORAGE", "OffsetMovedToTieredStorageException", N),
    110: ("FENCED_MEMBER_EPOCH", "FencedMemberEpochException", N),
    111: ("UNRELEASED_INSTANCE_ID", "UnreleasedInstanceIdException", N),
    112: ("UNSUPPORTED_ASSIGNOR", "UnsupportedAssignorException", N),
    113: ("STALE_MEMBER_EPOCH", "StaleMemberEpochException", N),
    114: ("MISMATCHED_ENDPOINT_TYPE", "MismatchedEndpointTypeException", N),
    115: ("UNSUPPORTED_ENDPOINT_TYPE", "UnsupportedEndpointTypeException", N),
    116: ("UNKNOWN_CONTROLLER_ID", "UnknownControllerIdException", N),
    117: ("UNKNOWN_SUBSCRIPTION_ID", "UnknownSubscriptionIdException", N),
    118: ("TELEMETRY_TOO_LARGE", "TelemetryTooLargeException", N),
    119: ("INVALID_REGISTRATION", "InvalidRegistrationException", N),
    120: ("TRANSACTION_ABORTABLE", "TransactionAbortableException", N),
    121: ("INVALID_RECORD_STATE", "InvalidRecordStateException", N),
    122: ("SHARE_SESSION_NOT_FOUND", "ShareSessionNotFoundException", R),
    123: ("INVALID_SHARE_SESSION_EPOCH", "InvalidShareSessionEpochException", R),
    124: ("FENCED_STATE_EPOCH", "FencedStateEpochException", N),
    125: ("INVALID_VOTER_KEY", "InvalidVoterKeyException", N),
    126: ("DUPLICATE_VOTER", "DuplicateVoterException", N),
    127: ("VOTER_NOT_FOUND", "VoterNotFoundException", N),
    128: ("INVALID_REGULAR_EXPRESSION", "InvalidRegularExpression", N),
    129: ("REBOOTSTRAP_REQUIRED", "RebootstrapRequiredException", N),
    130: ("STREAMS_INVALID_TOPOLOGY", "StreamsInvalidTopologyException", N),
    131: ("STREAMS_INVALID_TOPOLOGY_EPOCH", "StreamsInvalidTopologyEpochException", N),
    132: ("STREAMS_TOPOLOGY_FENCED", "StreamsTopologyFencedException", N),
    133: ("SHARE_SESSION_LIMIT_REACHED", "ShareSessionLimitReachedException", R),
}

# Where the Python name cannot be Java's name with Exception -> Error.
RENAMED = {
    7: "KafkaTimeoutError",  # Java TimeoutException; Python's TimeoutError is builtin
    2: "CorruptMessageError",  # Java CorruptRecordException; CorruptRecordError is taken
    12: "OffsetMetadataTooLargeError",  # Java OffsetMetadataTooLarge (no suffix)
    128: "InvalidRegularExpressionError",  # Java InvalidRegularExpression (no suffix)
}


def _python_name(code: int, java_class: str) -> str:
    return RENAMED.get(code) or re.sub(r"Exception$", "Error", java_class)


# ----------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------


def test_class_block_is_generated_from_the_table() -> None:
    source = ERRORS_PY.read_text()
    assert gen_errors.current_block(source) == gen_errors.render_class_block(source), (
        "the class block of fastprod/errors.py is stale: run `python tools/gen_errors.py`"
    )
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_check_mode_notices_a_stale_block(tmp_path: Path) -> None:
    copy = tmp_path / "errors.py"
    shutil.copy(ERRORS_PY, copy)
    source = copy.read_text()
    edited = source.replace('name = "NOT_LEADER_OR_FOLLOWER"\n', 'name = "EDITED"\n', 1)
    assert edited != source
    copy.write_text(edited)
    check = [sys.executable, str(GENERATOR), "--check", "--errors-py", str(copy)]
    result = subprocess.run(check, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "out of date" in result.stderr
    # Writing restores the block from the table, byte for byte.
    subprocess.run(check[:2] + check[3:], check=True, capture_output=True, cwd=ROOT)
    assert copy.read_text() == source
    assert subprocess.run(check, capture_output=True, cwd=ROOT).returncode == 0


def test_table_has_every_java_code_and_nothing_else() -> None:
    codes = sorted(JAVA_ERRORS)
    assert [r.code for r in ERROR_TABLE] == [codes[0], 0, *codes[1:]]
    assert ERRORS_BY_CODE[0].name == "NONE" and ERRORS_BY_CODE[0].class_name is None


@pytest.mark.parametrize("code", sorted(JAVA_ERRORS))
def test_every_code_maps_to_its_class(code: int) -> None:
    name, java_class, kind = JAVA_ERRORS[code]
    row = ERRORS_BY_CODE[code]
    assert row.name == name
    cls = error_class_for_code(code)
    assert cls.__name__ == _python_name(code, java_class)
    assert getattr(errors, cls.__name__) is cls
    assert cls.code == code and cls.name == name
    assert cls.default_message == row.message and row.message
    assert (row.retriable, row.invalid_metadata) == (kind != N, kind == M)
    assert (cls.retriable, cls.invalid_metadata) == (kind != N, kind == M)
    assert issubclass(cls, RetriableError) == (kind != N)
    assert issubclass(cls, InvalidMetadataError) == (kind == M)
    error = error_for_code(code)
    assert type(error) is cls
    assert (error.code, error.name, error.retriable) == (code, name, kind != N)
    assert str(error) == error.message == row.message
    assert cls.__doc__ and "\n" not in cls.__doc__.strip()


@pytest.mark.parametrize(
    ("code", "retriable", "invalid_metadata"),
    [
        (6, True, True),  # NOT_LEADER_OR_FOLLOWER
        (3, True, True),  # UNKNOWN_TOPIC_OR_PARTITION
        (5, True, True),  # LEADER_NOT_AVAILABLE
        (13, True, True),  # NETWORK_EXCEPTION
        (56, True, True),  # KAFKA_STORAGE_ERROR
        (74, True, True),  # FENCED_LEADER_EPOCH
        (75, True, False),  # UNKNOWN_LEADER_EPOCH: retriable, not InvalidMetadataException
        (16, True, False),  # NOT_COORDINATOR: coordinator lookup, not metadata
        (15, True, False),  # COORDINATOR_NOT_AVAILABLE
        (19, True, False),  # NOT_ENOUGH_REPLICAS
        (20, True, False),  # NOT_ENOUGH_REPLICAS_AFTER_APPEND
        (7, True, False),  # REQUEST_TIMED_OUT
        (2, True, False),  # CORRUPT_MESSAGE
        (51, True, False),  # CONCURRENT_TRANSACTIONS
        (89, True, False),  # THROTTLING_QUOTA_EXCEEDED
        (10, False, False),  # MESSAGE_TOO_LARGE
        (18, False, False),  # RECORD_LIST_TOO_LARGE
        (45, False, False),  # OUT_OF_ORDER_SEQUENCE_NUMBER
        (46, False, False),  # DUPLICATE_SEQUENCE_NUMBER
        (47, False, False),  # INVALID_PRODUCER_EPOCH
        (59, False, False),  # UNKNOWN_PRODUCER_ID
        (90, False, False),  # PRODUCER_FENCED
        (29, False, False),  # TOPIC_AUTHORIZATION_FAILED
        (87, False, False),  # INVALID_RECORD
        (-1, False, False),  # UNKNOWN_SERVER_ERROR
    ],
)
def test_flags_of_known_codes(code: int, retriable: bool, invalid_metadata: bool) -> None:
    assert errors.is_retriable(code) is retriable
    assert errors.is_invalid_metadata(code) is invalid_metadata
    error = error_for_code(code)
    assert (error.retriable, error.invalid_metadata) == (retriable, invalid_metadata)


def test_producer_relevant_names() -> None:
    assert type(error_for_code(6)) is NotLeaderOrFollowerError
    assert type(error_for_code(19)) is NotEnoughReplicasError
    assert type(error_for_code(10)) is RecordTooLargeError
    assert type(error_for_code(90)) is ProducerFencedError
    assert type(error_for_code(47)).__name__ == "InvalidProducerEpochError"
    assert type(error_for_code(45)).__name__ == "OutOfOrderSequenceError"
    assert type(error_for_code(46)).__name__ == "DuplicateSequenceError"
    assert type(error_for_code(59)).__name__ == "UnknownProducerIdError"
    assert type(error_for_code(7)) is KafkaTimeoutError is errors.RequestTimedOutError


# ----------------------------------------------------------------------------------------
# Lookups
# ----------------------------------------------------------------------------------------


def test_broker_message_replaces_the_default() -> None:
    error = error_for_code(6, "partition t-0 moved")
    assert str(error) == "partition t-0 moved" and error.code == 6


@pytest.mark.parametrize("code", [134, 999, -2, 32767])
def test_unknown_code_keeps_its_code(code: int) -> None:
    error = error_for_code(code, "from a newer broker")
    assert type(error) is UnknownServerError
    assert error.code == code and UnknownServerError.code == -1
    assert str(code) in str(error) and "from a newer broker" in str(error)
    assert not error.retriable and not errors.is_retriable(code)
    assert error_class_for_code(code) is UnknownServerError


def test_code_zero_is_not_an_error() -> None:
    with pytest.raises(ValueError):
        error_for_code(0)
    with pytest.raises(ValueError):
        error_class_for_code(0)


def test_errors_pickle_with_their_state() -> None:
    for error in (error_for_code(6, "moved"), error_for_code(4242),
                  NoBrokersAvailableError(servers=("a:1", "b:2")),
                  CorruptRecordError("bad crc", 1, 2)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


# ----------------------------------------------------------------------------------------
# Hierarchy
# ----------------------------------------------------------------------------------------


def test_hierarchy() -> None:
    assert issubclass(KafkaError, FastprodError)
    assert issubclass(RetriableError, KafkaError)
    assert issubclass(InvalidMetadataError, RetriableError)
    assert issubclass(NotLeaderOrFollowerError, InvalidMetadataError)
    assert issubclass(NotEnoughReplicasError, RetriableError)
    assert not issubclass(NotEnoughReplicasError, InvalidMetadataError)
    assert not issubclass(RecordTooLargeError, RetriableError)
    assert issubclass(errors.TopicAuthorizationError, AuthorizationError)
    assert issubclass(errors.SaslAuthenticationError, AuthenticationError)
    assert issubclass(ProducerFencedError, errors.ApplicationRecoverableError)
    # API misuse and internal errors are not KafkaErrors
    assert issubclass(ConfigError, ValueError) and not issubclass(ConfigError, KafkaError)
    assert not issubclass(ProtocolError, KafkaError)
    assert issubclass(ProducerClosedError, IllegalStateError)
    assert issubclass(IllegalStateError, RuntimeError)
    assert not issubclass(IllegalStateError, KafkaError)
    assert not issubclass(SerializationError, KafkaError)


def test_client_side_errors() -> None:
    # Java BufferExhaustedException extends TimeoutException (retriable)
    full = BufferFullError()
    assert isinstance(full, KafkaTimeoutError) and full.retriable and full.code == 7
    assert "max.block.ms" in str(full)
    assert str(BufferFullError("waited 60000 ms")) == "waited 60000 ms"
    # record larger than max.request.size / buffer.memory: the same class as code 10
    too_large = RecordTooLargeError("record of 2000000 bytes exceeds max.request.size")
    assert too_large.code == 10 and not too_large.retriable
    nobrokers = NoBrokersAvailableError(servers=("k1:9092", "[::1]:9093"))
    assert "k1:9092" in str(nobrokers) and "[::1]:9093" in str(nobrokers)
    assert nobrokers.servers == ("k1:9092", "[::1]:9093") and nobrokers.code is None
    lost = WorkerLostError()
    assert isinstance(lost, KafkaError) and lost.code is None and not lost.retriable
    assert str(ProducerClosedError("closed")) == "closed"


def test_every_class_has_a_one_line_docstring() -> None:
    classes = [obj for obj in vars(errors).values()
               if isinstance(obj, type) and issubclass(obj, FastprodError)]
    assert len(classes) > len(JAVA_ERRORS)
    for cls in classes:
        if cls is CorruptRecordError:  # documents its extra attributes
            continue
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, cls.__name__


def test_errors_module_imports_nothing_from_fastprod() -> None:
    source = ERRORS_PY.read_text()
    assert not re.search(r"^\s*(from|import)\s+fastprod", source, re.M)
