// Package docs embeds the documentation files that llem serves itself:
// the archive's OpenAPI description (served at /api/v1/openapi.yaml by
// llem archive serve, and checked against its routes by a test).
package docs

import _ "embed"

// ArchiveOpenAPI is archive-openapi.yaml.
//
//go:embed archive-openapi.yaml
var ArchiveOpenAPI []byte
