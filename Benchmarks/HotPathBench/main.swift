let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
try await runHotPathBench(iterations: iterations)
