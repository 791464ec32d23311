// The request model and validation types (GenerationRequest, ValidationIssue, ...) come with KlingKit.
@_exported import KlingAPI
