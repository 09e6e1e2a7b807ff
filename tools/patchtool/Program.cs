using PatchTool;

return await PatchToolProgram.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
