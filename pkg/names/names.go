// Package names spells the names of the objects aether-devhot makes for a
// Deployment, for the webhook that refers to them and the reconciler that
// creates them.
package names

// ServiceAccount is the service account the webhook gives the pods of a
// Deployment that ran under the namespace's default one (DESIGN.md rule
// 6b); the reconciler creates it.
func ServiceAccount(deployment string) string { return deployment + "-devhot" }

// Role is the Role, and its RoleBinding, that lets the fetchers of a
// Deployment watch it and report Events.
func Role(deployment string) string { return "aether-devhot-" + deployment }
