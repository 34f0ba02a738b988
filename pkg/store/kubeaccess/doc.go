// Package kubeaccess answers the store's access questions (store.Access)
// with the Kubernetes API, and tells it which blobs are pinned.
//
//   - A reader shows a bearer token; Reviewer checks it with a TokenReview
//     for the store's audience and asks a SubjectAccessReview whether its
//     holder may get the Deployment the blob was pushed for. A fetcher's
//     Role allows exactly that for its own Deployment, so a pod reads only
//     its own Deployment's blobs, in its own namespace.
//   - An upload carries no identity the store could check: the API
//     server's service proxy strips the pusher's credentials and adds
//     none, and any pod can reach the store's ClusterIP directly. So
//     Deployments accepts the upload of a digest only while a labelled
//     Deployment asks for it, in aether.dev/upload-digest (which kubectl
//     devhot push sets first) or aether.dev/digest. Who may patch the
//     Deployment may push its code anyway; anyone else can at most send
//     the very bytes that were asked for, which the digest fixes.
//   - The same digests are pinned: eviction never removes them.
//
// docs/store.md is the whole security model.
package kubeaccess
