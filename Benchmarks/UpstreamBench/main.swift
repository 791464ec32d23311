// Usage: UpstreamBench [tasks] [calls per second] [queries per task]   (defaults: 1000 50 1)
let arguments = Array(CommandLine.arguments.dropFirst())
let tasks = arguments.count > 0 ? Int(arguments[0]) ?? 1000 : 1000
let rate = arguments.count > 1 ? Double(arguments[1]) ?? 50 : 50
let queries = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1
try await runUpstreamBench(tasks: tasks, rate: rate, queries: queries)
