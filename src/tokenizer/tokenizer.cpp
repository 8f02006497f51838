// Placeholder until the tokenizer lands (issue #3).
namespace hearth::tokenizer {}
