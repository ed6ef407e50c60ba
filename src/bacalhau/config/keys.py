"""Every config key, once: its name, type, default, description, and whether this node uses it.

The original v1.9 has 130 keys (``pkg/config/types``); all of them load here, so that its config files do. A key for
a feature this node does not have is ``UNSUPPORTED``: accepted, shown by ``config list``, and named in one warning
when a node starts with it set. Keys the original lacks are marked ``ours``. Adding a key is one entry below; a key
this node uses is also read through an attribute of ``model.BacalhauConfig``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from bacalhau.config.kinds import (
    INT64_MAX,
    TEXT,
    UINT64_MAX,
    Boolean,
    Choice,
    Duration,
    Integer,
    Kind,
    Struct,
    StructList,
    StructMap,
    Text,
    TextList,
    TextMap,
)
from bacalhau.errors import ConfigurationError
from bacalhau.models.limits import DEFAULT_MAX_COUNT

DEFAULT_DATA_DIR = Path("~/.bacalhau")
ENV_PREFIX = "BACALHAU_"
LIST_KEYS_HINT = "run 'bacalhau config list' for the complete list of valid config keys"


class Support(Enum):
    USED = "used"
    UNSUPPORTED = "unsupported"  # a feature this node does not have: accepted, and a node set up with it warns
    MOOT = "moot"  # turns off what this node never does (phoning home): accepted, and nothing to warn about


@dataclass(frozen=True)
class ConfigKey:
    """One settable key: a leaf of the config tree."""

    name: str  # dotted, as the original spells it: ``Compute.Heartbeat.Interval``
    kind: Kind
    default: Any
    description: str
    support: Support = Support.USED
    ours: bool = False  # a key the original does not have

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    @property
    def env_name(self) -> str:
        """``BACALHAU_API_HOST`` for ``API.Host`` (no key has an underscore, so the mapping is unambiguous)."""
        return ENV_PREFIX + self.name.replace(".", "_").upper()

    @property
    def help(self) -> str:
        """The description ``config list`` and completion show."""
        if self.support is Support.UNSUPPORTED:
            return f"{self.description} Not supported by this node: accepted, and ignored."
        return self.description


BOOL = Boolean()
INT = Integer()
COUNT = Integer(0)
PORT = Integer(0, 65535)
DURATION = Duration()
LIST = TextList()
MAP = TextMap()
SECRET = Text(secret=True)
CAPABILITY = Struct(Actions=LIST)
AUTH_USER = Struct(Alias=TEXT, Username=TEXT, Password=SECRET, APIKey=SECRET, Capabilities=StructList(CAPABILITY))
UNSUPPORTED, MOOT = Support.UNSUPPORTED, Support.MOOT

_JOB_TYPES = ("Batch", "Ops", "Daemon", "Service")


def _job_defaults(kind: str) -> tuple[ConfigKey, ...]:
    """The defaults of one job type. The original has no publisher or timeouts for daemon and service jobs."""
    prefix, jobs = f"JobDefaults.{kind}.", kind.lower()
    long_running = kind in ("Daemon", "Service")
    publisher_params = (
        ()
        if long_running
        else (
            ConfigKey(
                prefix + "Task.Publisher.Params",
                MAP,
                {},
                f"Parameters for the default publisher of {jobs} tasks.",
                UNSUPPORTED,
            ),
        )
    )
    return (
        ConfigKey(prefix + "Priority", INT, 0, f"The priority given to {jobs} jobs that do not set one."),
        ConfigKey(
            prefix + "Task.Resources.CPU",
            TEXT,
            "500m",
            f"The CPU given to {jobs} tasks that do not ask for an amount (e.g. '500m' = half a core).",
        ),
        ConfigKey(
            prefix + "Task.Resources.Memory",
            TEXT,
            "512Mb",
            f"The memory given to {jobs} tasks that do not ask for an amount (e.g. '1Gb').",
        ),
        ConfigKey(
            prefix + "Task.Resources.Disk",
            TEXT,
            "",
            f"The disk given to {jobs} tasks that do not ask for an amount (e.g. '1Gb').",
        ),
        ConfigKey(
            prefix + "Task.Resources.GPU",
            TEXT,
            "",
            f"The GPUs given to {jobs} tasks that do not ask for any (e.g. '1').",
        ),
        ConfigKey(
            prefix + "Task.Publisher.Type",
            TEXT,
            "",
            f"The publisher for {jobs} tasks that name none (e.g. local, s3, noop).",
            ours=long_running,
        ),
        *publisher_params,
        ConfigKey(
            prefix + "Task.Timeouts.ExecutionTimeout",
            DURATION,
            "0s",
            f"The longest a {jobs} task may run when it sets no execution timeout.",
            ours=long_running,
        ),
        ConfigKey(
            prefix + "Task.Timeouts.TotalTimeout",
            DURATION,
            "0s",
            f"The longest a {jobs} job may take in all when it sets no total timeout.",
            ours=long_running,
        ),
        ConfigKey(
            prefix + "Task.Timeouts.QueueTimeout",
            DURATION,
            "0s",
            f"The longest a {jobs} job may wait in the queue when it sets no queue timeout.",
            ours=True,
        ),
    )


KEYS: tuple[ConfigKey, ...] = (
    # ---- the API
    ConfigKey(
        "API.Host", TEXT, "0.0.0.0", "The host or IP address the API server listens on, and that the CLI connects to."
    ),
    ConfigKey("API.Port", PORT, 1234, "The port the API server listens on, and that the CLI connects to."),
    ConfigKey(
        "API.TLS.CertFile",
        TEXT,
        "",
        "The API server's TLS certificate (PEM); with KeyFile, the API is served over HTTPS only.",
    ),
    ConfigKey("API.TLS.KeyFile", TEXT, "", "The private key (PEM) of API.TLS.CertFile."),
    ConfigKey("API.TLS.CAFile", TEXT, "", "For clients: the CA certificate (PEM) to trust for the API's certificate."),
    ConfigKey("API.TLS.UseTLS", BOOL, False, "For clients: connect to the API over HTTPS."),
    ConfigKey(
        "API.TLS.Insecure",
        BOOL,
        False,
        "For clients: connect over HTTPS without checking the server's certificate (tests only).",
    ),
    ConfigKey(
        "API.TLS.SelfSigned",
        BOOL,
        False,
        "Serve the API over HTTPS with a self-signed certificate, made once in the data dir.",
    ),
    ConfigKey(
        "API.TLS.AutoCert",
        TEXT,
        "",
        "A domain to get a certificate for automatically (ACME); a node set up with one refuses to start.",
    ),
    ConfigKey(
        "API.TLS.AutoCertCachePath", TEXT, "", "Where certificates got for API.TLS.AutoCert are kept.", UNSUPPORTED
    ),
    ConfigKey(
        "API.Auth.Users",
        StructList(AUTH_USER),
        [],
        "API users: Username and Password (plain or bcrypt) or APIKey, and Capabilities. None: open.",
    ),
    ConfigKey(
        "API.Auth.Methods",
        StructMap(Struct(Type=TEXT, PolicyPath=TEXT)),
        {"ClientKey": {"Type": "challenge", "PolicyPath": ""}},
        "Authentication methods by name (client keys, passwords, SSO), each with its policy; this node knows only "
        "API.Auth.Users.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "API.Auth.AccessPolicyPath",
        TEXT,
        "",
        "An access policy file for API requests; a node set up with one refuses to start.",
    ),
    ConfigKey(
        "API.Auth.Oauth2.ProviderID",
        TEXT,
        "",
        "The SSO (OAuth2) provider's ID; a node set up with one refuses to start.",
    ),
    ConfigKey("API.Auth.Oauth2.ProviderName", TEXT, "", "The SSO (OAuth2) provider's name, offered to clients."),
    ConfigKey("API.Auth.Oauth2.TokenEndpoint", TEXT, "", "The SSO (OAuth2) token endpoint, offered to clients."),
    ConfigKey("API.Auth.Oauth2.JWKSUri", TEXT, "", "The SSO (OAuth2) key set URL, offered to clients."),
    ConfigKey("API.Auth.Oauth2.Issuer", TEXT, "", "The SSO (OAuth2) token issuer, offered to clients."),
    ConfigKey(
        "API.Auth.Oauth2.DeviceClientID", TEXT, "", "The SSO (OAuth2) device-flow client ID, offered to clients."
    ),
    ConfigKey("API.Auth.Oauth2.Audience", TEXT, "", "The SSO (OAuth2) token audience, offered to clients."),
    ConfigKey("API.Auth.Oauth2.Scopes", LIST, [], "The SSO (OAuth2) scopes to request, offered to clients."),
    ConfigKey(
        "API.Auth.Oauth2.DeviceAuthorizationEndpoint",
        TEXT,
        "",
        "The SSO (OAuth2) device authorization endpoint, offered to clients.",
    ),
    ConfigKey(
        "API.Auth.Oauth2.PollingInterval",
        COUNT,
        0,
        "Seconds between polls in the SSO (OAuth2) device flow, offered to clients.",
    ),
    # ---- the node as a whole
    ConfigKey(
        "NameProvider", TEXT, "puuid", "How the node's name is chosen on first start. One of: hostname, uuid, puuid."
    ),
    ConfigKey(
        "DataDir",
        TEXT,
        str(DEFAULT_DATA_DIR),
        "The directory where the node keeps its state (job store, results, node name, profiles).",
    ),
    ConfigKey(
        "Labels", MAP, {}, "Key-value pairs that describe this node; jobs select nodes with them (--constraints)."
    ),
    ConfigKey(
        "StrictVersionMatch", BOOL, False, "Refuse clients and nodes of a version other than this one.", UNSUPPORTED
    ),
    ConfigKey("DisableAnalytics", BOOL, False, "Turn off anonymous usage reports; this node never sends any.", MOOT),
    ConfigKey(
        "UpdateConfig.Interval",
        DURATION,
        "24h0m0s",
        "How often to check for a newer release (0: never); this node never checks.",
        MOOT,
    ),
    ConfigKey(
        "Logging.Level",
        Choice("trace", "debug", "info", "warn", "error", "fatal", "panic"),
        "info",
        "The logging level. One of: trace, debug, info, warn, error, fatal, panic.",
    ),
    ConfigKey(
        "Logging.Mode", Choice("default", "json", "cmd"), "default", "The logging format. One of: default, json, cmd."
    ),
    ConfigKey(
        "Logging.LogDebugInfoInterval",
        DURATION,
        "30s",
        "How often a compute node logs its internal state for debugging.",
        UNSUPPORTED,
    ),
    ConfigKey("WebUI.Enabled", BOOL, False, "Serve the web UI (on an orchestrator)."),
    ConfigKey("WebUI.Listen", TEXT, "0.0.0.0:8438", "The address and port the web UI listens on."),
    ConfigKey(
        "WebUI.Backend",
        TEXT,
        "",
        "The API the web UI talks to, as a browser reaches it (empty: this node's own API).",
    ),
    # ---- the orchestrator
    ConfigKey(
        "Orchestrator.Enabled",
        BOOL,
        False,
        "Run the orchestrator role: accept jobs and schedule them on compute nodes.",
    ),
    ConfigKey(
        "Orchestrator.Host",
        TEXT,
        "0.0.0.0",
        "The host or IP address the orchestrator listens on for compute node connections (NATS).",
    ),
    ConfigKey(
        "Orchestrator.Port", PORT, 4222, "The port the orchestrator listens on for compute node connections (NATS)."
    ),
    ConfigKey(
        "Orchestrator.Advertise",
        TEXT,
        "",
        "The address compute nodes are told to reach this orchestrator's NATS server at (host or host:port, the port "
        "being Orchestrator.Port when left out; empty: the addresses it listens on). A cluster's servers pass it on to "
        "every client, which fails over to it when its own server goes.",
    ),
    ConfigKey("Orchestrator.Auth.Token", SECRET, "", "The token compute nodes must present to join this orchestrator."),
    ConfigKey(
        "Orchestrator.TLS.ServerCert",
        TEXT,
        "",
        "The NATS server's TLS certificate (PEM): compute nodes then connect over TLS.",
    ),
    ConfigKey("Orchestrator.TLS.ServerKey", TEXT, "", "The private key (PEM) of Orchestrator.TLS.ServerCert."),
    ConfigKey(
        "Orchestrator.TLS.ServerTimeout",
        COUNT,
        0,
        "Seconds the NATS server allows for a TLS handshake (0: its default).",
    ),
    ConfigKey(
        "Orchestrator.TLS.CACert",
        TEXT,
        "",
        "The CA certificate (PEM) the orchestrator trusts, and checks client certificates with.",
    ),
    ConfigKey(
        "Orchestrator.TLS.RequireClientCert",
        BOOL,
        False,
        "Mutual TLS: compute nodes must present a certificate signed by CACert.",
        ours=True,
    ),
    ConfigKey(
        "Orchestrator.JobStore.Type",
        Choice("sqlite", "postgres"),
        "sqlite",
        "Where the orchestrator keeps jobs, executions, evaluations and nodes: sqlite (a file in the data dir, for one "
        "orchestrator) or postgres (a PostgreSQL database that several orchestrators share; see "
        "Orchestrator.JobStore.URL).",
        ours=True,
    ),
    ConfigKey(
        "Orchestrator.JobStore.URL",
        SECRET,
        "",
        "The PostgreSQL database of Orchestrator.JobStore.Type=postgres, as a libpq connection URL "
        "(postgresql://user:password@host:5432/dbname; options=-csearch_path=NAME puts the tables in another schema). "
        "Shown masked: it may hold a password.",
        ours=True,
    ),
    ConfigKey(
        "Orchestrator.Cluster.Name",
        TEXT,
        "",
        "The name of a cluster of orchestrators whose NATS servers route messages to each other, the same on each "
        "(letters, digits, '-', '_', '.'). Empty, with Orchestrator.Cluster.Port 0: no cluster.",
    ),
    ConfigKey(
        "Orchestrator.Cluster.Host",
        TEXT,
        "",
        "The host or IP address this orchestrator listens on for the cluster's routes (empty: Orchestrator.Host).",
    ),
    ConfigKey(
        "Orchestrator.Cluster.Port",
        PORT,
        0,
        "The port this orchestrator listens on for the cluster's routes (nats-server's usual: 6222; 0: no cluster). "
        "Routes authenticate with Orchestrator.Auth.Token, so every orchestrator of a cluster needs the same one; with "
        "Orchestrator.TLS they use TLS both ways: each presents Orchestrator.TLS.ServerCert (which must allow server "
        "and client authentication and name the address its peers dial) and checks its peers' against "
        "Orchestrator.TLS.CACert.",
    ),
    ConfigKey(
        "Orchestrator.Cluster.Advertise",
        TEXT,
        "",
        "The address (host or host:port) other orchestrators of the cluster are told to reach this one's routes at "
        "(empty: what it listens on).",
    ),
    ConfigKey(
        "Orchestrator.Cluster.Peers",
        LIST,
        [],
        "Other orchestrators of the cluster to dial at start (host:port or nats://host:port of their cluster port, "
        "at most 64; this one's own address may be listed too). One reachable peer is enough: the others are learnt "
        "from it. A peer not up yet is dialled again until it is.",
    ),
    ConfigKey(
        "Orchestrator.NodeManager.DisconnectTimeout",
        DURATION,
        "1m0s",
        "How long without a heartbeat before a node counts as disconnected.",
    ),
    ConfigKey(
        "Orchestrator.NodeManager.ManualApproval",
        BOOL,
        False,
        "If true, new compute nodes wait for 'bacalhau node approve'.",
    ),
    ConfigKey(
        "Orchestrator.Scheduler.WorkerCount",
        Integer(1, 1024),
        4,
        "How many evaluations are scheduled at the same time.",
    ),
    ConfigKey(
        "Orchestrator.Scheduler.QueueBackoff",
        DURATION,
        "1m0s",
        "How long a queued job waits before scheduling is tried again.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Orchestrator.Scheduler.HousekeepingInterval",
        DURATION,
        "30s",
        "How often timed-out and stuck executions are looked for.",
    ),
    ConfigKey(
        "Orchestrator.Scheduler.HousekeepingTimeout",
        DURATION,
        "2m0s",
        "The longest one housekeeping run may take.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Orchestrator.Scheduler.MaxRetries",
        COUNT,
        2,
        "Retries of a failed batch execution on other nodes before the job fails.",
        ours=True,
    ),
    ConfigKey(
        "Orchestrator.EvaluationBroker.VisibilityTimeout",
        DURATION,
        "1m0s",
        "How long a scheduler may hold an evaluation before it is handed to another.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Orchestrator.EvaluationBroker.MaxRetryCount",
        INT,
        10,
        "How many times an evaluation is tried before it fails.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Orchestrator.SupportReverseProxy",
        BOOL,
        False,
        "The orchestrator's NATS server runs behind a reverse proxy that ends TLS.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Orchestrator.JobLimits.MaxCount",
        Integer(1, INT64_MAX),
        DEFAULT_MAX_COUNT,
        "The largest Count one job may ask for; a bigger one is refused at submission.",
        ours=True,
    ),
    # ---- compute nodes
    ConfigKey("Compute.Enabled", BOOL, False, "Run the compute role: bid for and run jobs."),
    ConfigKey(
        "Compute.Orchestrators",
        LIST,
        ["nats://127.0.0.1:4222"],
        "The orchestrator NATS endpoints this compute node connects to: one, or several servers of a cluster of "
        "orchestrators (Orchestrator.Cluster), which also tells the node of its other servers; the node moves to "
        "another when the one it is on goes.",
    ),
    ConfigKey("Compute.Auth.Token", SECRET, "", "The token this compute node presents to the orchestrator."),
    ConfigKey(
        "Compute.TLS.CACert",
        TEXT,
        "",
        "The CA certificate (PEM) this compute node trusts for the orchestrator's certificate.",
    ),
    ConfigKey("Compute.TLS.RequireTLS", BOOL, False, "Refuse to connect to an orchestrator that does not offer TLS."),
    ConfigKey(
        "Compute.TLS.ClientCert",
        TEXT,
        "",
        "This node's certificate (PEM), for an orchestrator that requires client certificates.",
        ours=True,
    ),
    ConfigKey("Compute.TLS.ClientKey", TEXT, "", "The private key (PEM) of Compute.TLS.ClientCert.", ours=True),
    ConfigKey(
        "Compute.Heartbeat.Interval",
        DURATION,
        "15s",
        "How often this compute node sends a heartbeat to the orchestrator.",
    ),
    ConfigKey(
        "Compute.Heartbeat.InfoUpdateInterval",
        DURATION,
        "1m0s",
        "How often this compute node sends its node info to the orchestrator.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Compute.Heartbeat.ResourceUpdateInterval",
        DURATION,
        "0s",
        "Deprecated in the original, which ignores it too: use Compute.Heartbeat.Interval.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Compute.AllocatedCapacity.CPU",
        TEXT,
        "80%",
        "CPU for jobs: a percentage of the machine ('80%') or an amount ('2', '500m').",
    ),
    ConfigKey(
        "Compute.AllocatedCapacity.Memory",
        TEXT,
        "80%",
        "Memory for jobs: a percentage of the machine ('80%') or an amount ('4Gb').",
    ),
    ConfigKey(
        "Compute.AllocatedCapacity.Disk",
        TEXT,
        "80%",
        "Disk for jobs: a percentage of the machine ('80%') or an amount ('10Gb').",
    ),
    ConfigKey(
        "Compute.AllocatedCapacity.GPU",
        TEXT,
        "100%",
        "GPUs given to jobs: a percentage of those found (truncated to whole GPUs, but at least one when there is "
        "any, as the original) or a count.",
    ),
    ConfigKey("Compute.AllowListedLocalPaths", LIST, [], "Local paths jobs may mount (append ':rw' to allow writing)."),
    ConfigKey(
        "Compute.Env.AllowList", LIST, [], "Host environment variables jobs may read (patterns such as 'AWS_*')."
    ),
    ConfigKey(
        "Compute.Network.AdvertisedAddress",
        TEXT,
        "",
        "The address other nodes reach the ports of this node's jobs at (empty: found automatically).",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Compute.Network.PortRangeStart", PORT, 20000, "The first port this node gives to jobs' published ports."
    ),
    ConfigKey("Compute.Network.PortRangeEnd", PORT, 32000, "The last port this node gives to jobs' published ports."),
    ConfigKey(
        "Compute.Logs.Retention",
        DURATION,
        "1h0m0s",
        "How long the output of finished executions is kept for 'bacalhau job logs'.",
        ours=True,
    ),
    ConfigKey(
        "JobAdmissionControl.Locality",
        Choice("local", "anywhere"),
        "anywhere",
        "Which jobs a compute node takes by where their inputs are: local (only those whose inputs it already holds) "
        "or anywhere.",
    ),
    ConfigKey(
        "JobAdmissionControl.RejectStatelessJobs",
        BOOL,
        False,
        "Compute nodes refuse jobs without inputs.",
    ),
    ConfigKey(
        "JobAdmissionControl.RejectNetworkedJobs",
        BOOL,
        False,
        "Compute nodes refuse jobs that ask for network access.",
    ),
    ConfigKey(
        "JobAdmissionControl.ProbeHTTP",
        TEXT,
        "",
        'A URL each job is POSTed to ({"Job": ...}) before the compute node bids: a status of 400 or more, or a JSON '
        "answer with ShouldBid false, refuses it.",
    ),
    ConfigKey(
        "JobAdmissionControl.ProbeExec",
        TEXT,
        "",
        "A command (run by bash -c) given each job as JSON on its standard input before the compute node bids: exit "
        "code 0 accepts it, any other refuses it (its standard error says why).",
    ),
    # ---- engines, inputs, publishers, downloads
    ConfigKey("Engines.Disabled", LIST, [], "Execution engines this node does not offer (e.g. docker, wasm)."),
    ConfigKey(
        "Engines.Types.Docker.ManifestCache.Size",
        Integer(0, UINT64_MAX),
        1000,
        "How many Docker image manifests are cached.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Engines.Types.Docker.ManifestCache.TTL",
        DURATION,
        "1h0m0s",
        "How long a cached Docker image manifest is kept.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Engines.Types.Docker.ManifestCache.Refresh",
        DURATION,
        "1h0m0s",
        "How often cached Docker image manifests are refreshed.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "InputSources.Disabled",
        LIST,
        [],
        "Input sources this node does not offer (e.g. urlDownload, s3, ipfs, localDirectory).",
    ),
    ConfigKey(
        "InputSources.Types.IPFS.Endpoint",
        TEXT,
        "",
        "The IPFS (Kubo) RPC endpoint to fetch ipfs:// inputs from, as a multiaddress.",
    ),
    ConfigKey(
        "InputSources.MaxRetryCount",
        COUNT,
        3,
        "How many times fetching an input is tried before the execution fails.",
    ),
    ConfigKey(
        "InputSources.ReadTimeout",
        DURATION,
        "5m0s",
        "The longest fetching one input may take.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "InputSources.MaxDownloadSize",
        TEXT,
        "10gb",
        "The largest input this node downloads (e.g. '10gb').",
        ours=True,
    ),
    ConfigKey("Publishers.Disabled", LIST, [], "Publishers this node does not offer (e.g. local, s3, noop)."),
    ConfigKey(
        "Publishers.Types.Local.Address", TEXT, "127.0.0.1", "The address the local publisher serves results on."
    ),
    ConfigKey("Publishers.Types.Local.Port", PORT, 6001, "The port the local publisher serves results on."),
    ConfigKey(
        "Publishers.Types.S3.PreSignedURLDisabled",
        BOOL,
        False,
        "If true, S3 results are not offered as pre-signed download URLs.",
    ),
    ConfigKey(
        "Publishers.Types.S3.PreSignedURLExpiration",
        DURATION,
        "1h0m0s",
        "How long a pre-signed S3 result URL stays valid.",
    ),
    ConfigKey(
        "Publishers.Types.S3Managed.Bucket",
        TEXT,
        "",
        "The bucket of the orchestrator-managed S3 publisher, used by jobs that name no bucket.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Publishers.Types.S3Managed.Key",
        TEXT,
        "",
        "The prefix of the objects the managed S3 publisher writes (an object name, not a credential).",
        UNSUPPORTED,
    ),
    ConfigKey("Publishers.Types.S3Managed.Region", TEXT, "", "The region of the managed S3 bucket.", UNSUPPORTED),
    ConfigKey(
        "Publishers.Types.S3Managed.Endpoint",
        TEXT,
        "",
        "A custom S3 endpoint for the managed bucket (e.g. MinIO).",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Publishers.Types.S3Managed.PreSignedURLExpiration",
        DURATION,
        "1h0m0s",
        "How long a pre-signed URL to a managed S3 result stays valid.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "Publishers.Types.IPFS.Endpoint",
        TEXT,
        "",
        "The IPFS (Kubo) RPC endpoint results are published to, as a multiaddress.",
        UNSUPPORTED,
    ),
    ConfigKey(
        "ResultDownloaders.Disabled",
        LIST,
        [],
        "Result downloaders the CLI does not use (e.g. ipfs).",
        UNSUPPORTED,
    ),
    ConfigKey(
        "ResultDownloaders.Timeout",
        DURATION,
        "0s",
        "The longest the CLI spends downloading results (0: no limit).",
        UNSUPPORTED,
    ),
    ConfigKey(
        "ResultDownloaders.Types.IPFS.Endpoint",
        TEXT,
        "",
        "The IPFS (Kubo) RPC endpoint the CLI downloads ipfs:// results from.",
        UNSUPPORTED,
    ),
    *(key for kind in _JOB_TYPES for key in _job_defaults(kind)),
)

_BY_NAME = {key.name.lower(): key for key in KEYS}
_BY_ENV = {key.env_name: key for key in KEYS}


def config_keys() -> dict[str, ConfigKey]:
    """Every key, by its lower-case dotted name (keys match case-insensitively everywhere)."""
    return _BY_NAME


def key_for_env(name: str) -> ConfigKey | None:
    """The key a ``BACALHAU_...`` environment variable sets, if any (names are upper case, as viper reads them)."""
    return _BY_ENV.get(name)


def lookup_key(dotted: str) -> ConfigKey:
    """A dotted key (any case) as a config key; structs (``Compute.Heartbeat``) and unknown names are errors."""
    key = _BY_NAME.get(dotted.strip().lower())
    if key is None:
        raise ConfigurationError(
            f"{go_quote(dotted.strip().lower())} is not a valid config key", component="config", hint=LIST_KEYS_HINT
        )
    return key


def go_quote(text: str) -> str:
    """Go's ``%q``: a double-quoted string with escapes (as the original's error messages quote keys)."""
    return json.dumps(text, ensure_ascii=False)


def _children() -> dict[str, dict[str, str]]:
    """The names under each part of the tree (``""``, ``API``, ``API.TLS``), by lower-case name: how a document's
    keys, in any case, find their canonical spelling."""
    children: dict[str, dict[str, str]] = {}
    for key in KEYS:
        parent = ""
        for part in key.path:
            name = f"{parent}.{part}" if parent else part
            children.setdefault(parent, {})[part.lower()] = name
            parent = name
    return children


CHILDREN = _children()
