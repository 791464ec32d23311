// Usage: EngineOverheadBench [tasks in flight]   (default 200)
let arguments = Array(CommandLine.arguments.dropFirst())
try await runEngineOverheadBench(tasks: arguments.first.flatMap { Int($0) } ?? 200)
