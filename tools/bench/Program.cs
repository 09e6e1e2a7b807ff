using PatchBench;

return BenchProgram.Run(args);
