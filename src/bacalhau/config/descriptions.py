"""What each config key means, for ``bacalhau config list`` (keys as the original spells them).

The four job types share the ``JobDefaults.<Type>.*`` texts; ``description()`` fills them in.
"""

from __future__ import annotations

_JOB_TYPES = ("Batch", "Ops", "Daemon", "Service")

DESCRIPTIONS: dict[str, str] = {
    "API.Host": "The host or IP address the API server listens on, and that the CLI connects to.",
    "API.Port": "The port the API server listens on, and that the CLI connects to.",
    "NameProvider": "How the node's name is chosen on first start. One of: hostname, uuid, puuid.",
    "DataDir": "The directory where the node keeps its state (job store, results, node name, profiles).",
    "API.TLS.CertFile": "The API server's TLS certificate (PEM); with KeyFile, the API is served over HTTPS only.",
    "API.TLS.KeyFile": "The private key (PEM) of API.TLS.CertFile.",
    "API.TLS.CAFile": "For clients: the CA certificate (PEM) to trust for the API's certificate.",
    "API.TLS.UseTLS": "For clients: connect to the API over HTTPS.",
    "API.TLS.Insecure": "For clients: connect over HTTPS without checking the server's certificate (tests only).",
    "API.TLS.SelfSigned": "Serve the API over HTTPS with a self-signed certificate, made once in the data dir.",
    "API.TLS.AutoCert": "A domain to get a certificate for automatically (ACME); not supported here.",
    "API.TLS.AutoCertCachePath": "Where automatic certificates are cached; not supported here.",
    "API.Auth.Users": "API users: Username and Password (plain or bcrypt) or APIKey, and Capabilities. None: open.",
    "API.Auth.Methods": "The original's named authentication methods (SSO, policies); not used here.",
    "API.Auth.Oauth2.ProviderID": "SSO (OAuth2) provider ID offered to clients; SSO is not supported here.",
    "API.Auth.Oauth2.ProviderName": "SSO (OAuth2) provider name offered to clients; SSO is not supported here.",
    "API.Auth.Oauth2.TokenEndpoint": "SSO (OAuth2) token endpoint; SSO is not supported here.",
    "API.Auth.Oauth2.JWKSUri": "SSO (OAuth2) key set URL; SSO is not supported here.",
    "API.Auth.Oauth2.Issuer": "SSO (OAuth2) token issuer; SSO is not supported here.",
    "API.Auth.Oauth2.DeviceClientID": "SSO (OAuth2) device-flow client ID; SSO is not supported here.",
    "API.Auth.Oauth2.Audience": "SSO (OAuth2) token audience; SSO is not supported here.",
    "API.Auth.Oauth2.Scopes": "SSO (OAuth2) scopes requested; SSO is not supported here.",
    "API.Auth.Oauth2.DeviceAuthorizationEndpoint": "SSO (OAuth2) device authorization endpoint; not supported here.",
    "API.Auth.Oauth2.PollingInterval": "SSO (OAuth2) device-flow polling interval; SSO is not supported here.",
    "API.Auth.AccessPolicyPath": "The original's access policy file; not used here.",
    "Orchestrator.TLS.ServerCert": "The NATS server's TLS certificate (PEM): compute nodes then connect over TLS.",
    "Orchestrator.TLS.ServerKey": "The private key (PEM) of Orchestrator.TLS.ServerCert.",
    "Orchestrator.TLS.ServerTimeout": "Seconds the NATS server allows for a TLS handshake (0: its default).",
    "Orchestrator.TLS.CACert": "The CA certificate (PEM) the orchestrator trusts, and checks client certificates with.",
    "Orchestrator.TLS.RequireClientCert": "Mutual TLS: compute nodes must present a certificate signed by CACert.",
    "Compute.TLS.CACert": "The CA certificate (PEM) this compute node trusts for the orchestrator's certificate.",
    "Compute.TLS.RequireTLS": "Refuse to connect to an orchestrator that does not offer TLS.",
    "Compute.TLS.ClientCert": "This node's certificate (PEM), for an orchestrator that requires client certificates.",
    "Compute.TLS.ClientKey": "The private key (PEM) of Compute.TLS.ClientCert.",
    "Orchestrator.Enabled": "Run the orchestrator role: accept jobs and schedule them on compute nodes.",
    "Orchestrator.Host": "The host or IP address the orchestrator listens on for compute node connections (NATS).",
    "Orchestrator.Port": "The port the orchestrator listens on for compute node connections (NATS).",
    "Orchestrator.Advertise": "The address compute nodes are told to reach this orchestrator at.",
    "Orchestrator.Auth.Token": "The token compute nodes must present to join this orchestrator.",
    "Orchestrator.NodeManager.DisconnectTimeout": "How long without a heartbeat before a node counts as disconnected.",
    "Orchestrator.NodeManager.ManualApproval": "If true, new compute nodes wait for 'bacalhau node approve'.",
    "Orchestrator.Scheduler.WorkerCount": "How many evaluations are scheduled at the same time.",
    "Orchestrator.Scheduler.QueueBackoff": "How long a queued job waits before scheduling is tried again.",
    "Orchestrator.Scheduler.HousekeepingInterval": "How often timed-out and stuck executions are looked for.",
    "Orchestrator.Scheduler.MaxRetries": "Retries of a failed batch execution on other nodes before the job fails.",
    "Orchestrator.JobLimits.MaxCount": "The largest Count one job may ask for; a bigger one is refused at submission.",
    "Compute.Enabled": "Run the compute role: bid for and run jobs.",
    "Compute.Orchestrators": "The orchestrator NATS endpoints this compute node connects to.",
    "Compute.Auth.Token": "The token this compute node presents to the orchestrator.",
    "Compute.Heartbeat.Interval": "How often this compute node sends a heartbeat to the orchestrator.",
    "Compute.Heartbeat.InfoUpdateInterval": "How often this compute node sends its node info to the orchestrator.",
    "Compute.AllocatedCapacity.CPU": "CPU for jobs: a percentage of the machine ('80%') or an amount ('2', '500m').",
    "Compute.AllocatedCapacity.Memory": "Memory for jobs: a percentage of the machine ('80%') or an amount ('4Gb').",
    "Compute.AllocatedCapacity.Disk": "Disk for jobs: a percentage of the machine ('80%') or an amount ('10Gb').",
    "Compute.AllocatedCapacity.GPU": "GPUs given to jobs: a percentage (rounded up to whole GPUs) or a count.",
    "Compute.AllowListedLocalPaths": "Local paths jobs may mount (append ':rw' to allow writing).",
    "Compute.Env.AllowList": "Host environment variables jobs may read (patterns such as 'AWS_*').",
    "Compute.Logs.Retention": "How long the output of finished executions is kept for 'bacalhau job logs'.",
    "Labels": "Key-value pairs that describe this node; jobs select nodes with them (--constraints).",
    "Publishers.Disabled": "Publishers this node does not offer (e.g. local, s3, noop).",
    "Publishers.Types.Local.Address": "The address the local publisher serves results on.",
    "Publishers.Types.Local.Port": "The port the local publisher serves results on.",
    "Publishers.Types.S3.PreSignedURLDisabled": "If true, S3 results are not offered as pre-signed download URLs.",
    "Publishers.Types.S3.PreSignedURLExpiration": "How long a pre-signed S3 result URL stays valid.",
    "InputSources.Disabled": "Input sources this node does not offer (e.g. urlDownload, s3, ipfs, localDirectory).",
    "InputSources.Types.IPFS.Endpoint": "The IPFS (Kubo) RPC endpoint to fetch ipfs:// inputs from, as a multiaddress.",
    "InputSources.MaxRetryCount": "How many times fetching an input is tried before the execution fails.",
    "InputSources.MaxDownloadSize": "The largest input this node downloads (e.g. '10gb').",
    "Engines.Disabled": "Execution engines this node does not offer (e.g. docker, wasm).",
    "Logging.Level": "The logging level. One of: trace, debug, info, warn, error, fatal, panic.",
    "Logging.Mode": "The logging format. One of: default, json.",
    "UpdateConfig.Interval": "How often to check for a newer release; 0 turns the check off.",
}

_JOB_DEFAULTS: dict[str, str] = {
    "Priority": "The priority given to {kind} jobs that do not set one.",
    "Task.Resources.CPU": "The CPU given to {kind} tasks that do not ask for an amount (e.g. '500m' = half a core).",
    "Task.Resources.Memory": "The memory given to {kind} tasks that do not ask for an amount (e.g. '1Gb').",
    "Task.Resources.Disk": "The disk given to {kind} tasks that do not ask for an amount (e.g. '1Gb').",
    "Task.Resources.GPU": "The GPUs given to {kind} tasks that do not ask for any (e.g. '1').",
    "Task.Publisher.Type": "The publisher for {kind} tasks that name none (e.g. local, s3, noop).",
    "Task.Timeouts.ExecutionTimeout": "The longest a {kind} task may run when it sets no execution timeout.",
    "Task.Timeouts.TotalTimeout": "The longest a {kind} job may take in all when it sets no total timeout.",
    "Task.Timeouts.QueueTimeout": "The longest a {kind} job may wait in the queue when it sets no queue timeout.",
}

for _type in _JOB_TYPES:
    for _suffix, _text in _JOB_DEFAULTS.items():
        DESCRIPTIONS[f"JobDefaults.{_type}.{_suffix}"] = _text.format(kind=_type.lower())


def description(key: str) -> str:
    """The description of a canonical dotted key, or '' for a key that has none."""
    return DESCRIPTIONS.get(key, "")
