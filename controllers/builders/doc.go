// Package builders renders the children of a Registry: the registryd
// config.yml, the generated Secrets, the Deployment, the Service, the
// PersistentVolumeClaim, the PodDisruptionBudget and, when their CRDs exist,
// the ServiceMonitor and cert-manager Certificate.
//
// Every function here is pure: it takes the Registry (and, where needed,
// the Secrets it references) and returns objects, never touching a client.
// Owner references and the applied-hash annotation are set by the
// reconciler, in one place, when it applies what these functions return.
//
// # Config and credentials
//
// config.yml is built by filling registryd's own configuration types and
// rendering them with configuration.Marshal (one schema, two users), then
// checked with registryd's parser exactly as the pod will see it: with the
// REGISTRY_* variable names the Deployment sets, given placeholder values.
// A value the typed spec or extraConfig gets wrong is therefore an error
// here (Degraded/InvalidConfig), not a crash-looping pod.
//
// No credential is ever written into the ConfigMap. Credentials reach
// registryd in one of two ways:
//
//   - as REGISTRY_<SECTION>_<KEY> environment variables from secretKeyRef
//     (S3 keys, the Azure account key or client secret, proxy credentials,
//     notification headers, the generated http secret); a notification
//     header from a Secret is rendered as an empty list in config.yml and
//     filled by REGISTRY_NOTIFICATIONS_ENDPOINTS_<i>_HEADERS_<NAME>_0;
//   - as files of a Secret volume mounted as a directory (htpasswd, TLS
//     certificate and key, client CAs, token bundle/JWKS, GCS key file).
//
// # What rolls the pods
//
// The pod template carries ConfigChecksumAnnotation, a SHA-256 of the
// config.yml with the read-only flag cleared and of the data of every
// referenced Secret registryd does not reload by itself. registryd reloads
// config.yml's read-only flag, the htpasswd file and the TLS files when
// they change on disk, so the ConfigMap and those Secrets are mounted as
// directories (never subPath, whose files never update) and their changes
// are left out of the checksum: entering maintenance or rotating a
// certificate does not restart a pod.
package builders
