using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Patching.Tests.Architecture;

/// <summary>One type of an assembly using another type of the same assembly.</summary>
/// <param name="From">Full name of the using type (nested and compiler-generated types count as their outermost type).</param>
/// <param name="To">Full name of the used type, outermost as well.</param>
internal sealed record TypeReference(string From, string To);

/// <summary>
/// Reads, from a compiled assembly's metadata and IL, which of its types use which other of its types: base types,
/// interfaces, generic constraints, attributes, the signatures of fields, methods, properties and events, local
/// variables, and every type, method or field token in a method body (calls, <c>new</c>, casts, field access,
/// <c>typeof</c>). This is what the compiler really bound, so a <c>using</c> that is never used is not a reference,
/// and a reference through <c>var</c> or a fully qualified name is one.
/// </summary>
/// <remarks>
/// Nested types (closures, lambdas' <c>&lt;&gt;c</c> classes, async and iterator state machines, source-generated
/// P/Invoke stubs) belong to their outermost type, so a lambda's references count for the class that wrote it. Types
/// outside any namespace (anonymous types, <c>&lt;PrivateImplementationDetails&gt;</c>) are left out. References
/// to other assemblies are left out: the rules are about the assembly's own namespaces. Types named only inside an
/// attribute's arguments (<c>[JsonSerializable(typeof(T))]</c>) are not decoded; the code such an attribute makes a
/// generator write references them itself.
/// </remarks>
internal static class TypeReferenceReader
{
    private static readonly OperandType?[] OneByteOperands = new OperandType?[256];
    private static readonly OperandType?[] TwoByteOperands = new OperandType?[256];

    static TypeReferenceReader()
    {
        // The IL operand sizes come from the runtime's own opcode table rather than a copy of ECMA-335 here.
        foreach (var field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var opCode = (OpCode)field.GetValue(null)!;
            var value = unchecked((ushort)opCode.Value);
            if (opCode.Size == 1) OneByteOperands[value] = opCode.OperandType;
            else TwoByteOperands[value & 0xFF] = opCode.OperandType;
        }
    }

    /// <summary>The distinct type references inside the assembly at <paramref name="assemblyPath"/>, self-references left out.</summary>
    public static IReadOnlySet<TypeReference> Read(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var result = new HashSet<TypeReference>();
        foreach (var handle in md.TypeDefinitions)
        {
            var from = OutermostName(md, handle);
            if (from is null) continue;
            var used = new HashSet<TypeDefinitionHandle>();
            CollectFromType(md, pe, handle, new Collector(used));
            foreach (var target in used)
            {
                var to = OutermostName(md, target);
                if (to is not null && to != from) result.Add(new TypeReference(from, to));
            }
        }
        return result;
    }

    private static void CollectFromType(MetadataReader md, PEReader pe, TypeDefinitionHandle handle, Collector c)
    {
        var type = md.GetTypeDefinition(handle);
        c.Entity(md, type.BaseType);
        foreach (var i in type.GetInterfaceImplementations()) c.Entity(md, md.GetInterfaceImplementation(i).Interface);
        c.GenericParameters(md, type.GetGenericParameters());
        c.Attributes(md, type.GetCustomAttributes());

        foreach (var f in type.GetFields())
        {
            var field = md.GetFieldDefinition(f);
            field.DecodeSignature(c, null);
            c.Attributes(md, field.GetCustomAttributes());
        }
        foreach (var p in type.GetProperties())
        {
            var property = md.GetPropertyDefinition(p);
            property.DecodeSignature(c, null);
            c.Attributes(md, property.GetCustomAttributes());
        }
        foreach (var e in type.GetEvents()) c.Entity(md, md.GetEventDefinition(e).Type);
        foreach (var m in type.GetMethods())
        {
            var method = md.GetMethodDefinition(m);
            method.DecodeSignature(c, null);
            c.GenericParameters(md, method.GetGenericParameters());
            c.Attributes(md, method.GetCustomAttributes());
            foreach (var p in method.GetParameters()) c.Attributes(md, md.GetParameter(p).GetCustomAttributes());
            if (method.RelativeVirtualAddress != 0) CollectFromBody(md, pe.GetMethodBody(method.RelativeVirtualAddress), c);
        }
    }

    private static void CollectFromBody(MetadataReader md, MethodBodyBlock body, Collector c)
    {
        if (!body.LocalSignature.IsNil)
            md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(c, null);
        foreach (var region in body.ExceptionRegions) c.Entity(md, region.CatchType);

        var il = body.GetILReader();
        while (il.RemainingBytes > 0)
        {
            int first = il.ReadByte();
            var operand = first == 0xFE ? TwoByteOperands[il.ReadByte()] : OneByteOperands[first];
            switch (operand)
            {
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    il.Offset += 1;
                    break;
                case OperandType.InlineVar:
                    il.Offset += 2;
                    break;
                case OperandType.InlineBrTarget or OperandType.InlineI or OperandType.ShortInlineR or OperandType.InlineString:
                    il.Offset += 4;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    il.Offset += 8;
                    break;
                case OperandType.InlineSwitch:
                    var targets = il.ReadInt32();   // read before Offset: `Offset += 4 * ReadInt32()` would lose these 4 bytes
                    il.Offset += 4 * targets;
                    break;
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType
                    or OperandType.InlineTok or OperandType.InlineSig:
                    c.Entity(md, MetadataTokens.EntityHandle(il.ReadInt32()));
                    break;
                default:
                    throw new BadImageFormatException($"unknown IL opcode 0x{first:X2} at offset {il.Offset - 1}");
            }
        }
    }

    private static string? OutermostName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        while (type.IsNested) type = md.GetTypeDefinition(type.GetDeclaringType());
        var ns = md.GetString(type.Namespace);
        return ns.Length == 0 ? null : ns + "." + md.GetString(type.Name);
    }

    /// <summary>Decodes signatures and resolves tokens, adding every type definition of this assembly it meets.</summary>
    private sealed class Collector(HashSet<TypeDefinitionHandle> used) : ISignatureTypeProvider<bool, object?>
    {
        public void Entity(MetadataReader md, EntityHandle handle)
        {
            if (handle.IsNil) return;
            switch (handle.Kind)
            {
                case HandleKind.TypeDefinition:
                    used.Add((TypeDefinitionHandle)handle);
                    break;
                case HandleKind.TypeSpecification:
                    md.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null);
                    break;
                case HandleKind.MethodDefinition:
                    used.Add(md.GetMethodDefinition((MethodDefinitionHandle)handle).GetDeclaringType());
                    break;
                case HandleKind.FieldDefinition:
                    used.Add(md.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType());
                    break;
                case HandleKind.MemberReference:
                    var member = md.GetMemberReference((MemberReferenceHandle)handle);
                    Entity(md, member.Parent);
                    if (member.GetKind() == MemberReferenceKind.Method) member.DecodeMethodSignature(this, null);
                    else member.DecodeFieldSignature(this, null);
                    break;
                case HandleKind.MethodSpecification:
                    var spec = md.GetMethodSpecification((MethodSpecificationHandle)handle);
                    Entity(md, spec.Method);
                    spec.DecodeSignature(this, null);
                    break;
                case HandleKind.StandaloneSignature:
                    var signature = md.GetStandaloneSignature((StandaloneSignatureHandle)handle);
                    if (signature.GetKind() == StandaloneSignatureKind.Method) signature.DecodeMethodSignature(this, null);
                    break;
                default:
                    // TypeReference: a type of another assembly.
                    break;
            }
        }

        public void Attributes(MetadataReader md, CustomAttributeHandleCollection attributes)
        {
            foreach (var a in attributes) Entity(md, md.GetCustomAttribute(a).Constructor);
        }

        public void GenericParameters(MetadataReader md, GenericParameterHandleCollection parameters)
        {
            foreach (var p in parameters)
                foreach (var constraint in md.GetGenericParameter(p).GetConstraints())
                    Entity(md, md.GetGenericParameterConstraint(constraint).Type);
        }

        public bool GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => used.Add(handle);
        public bool GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => false;
        public bool GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind)
        {
            Entity(reader, handle);
            return false;
        }
        public bool GetArrayType(bool elementType, ArrayShape shape) => false;
        public bool GetByReferenceType(bool elementType) => false;
        public bool GetFunctionPointerType(MethodSignature<bool> signature) => false;
        public bool GetGenericInstantiation(bool genericType, ImmutableArray<bool> typeArguments) => false;
        public bool GetGenericMethodParameter(object? genericContext, int index) => false;
        public bool GetGenericTypeParameter(object? genericContext, int index) => false;
        public bool GetModifiedType(bool modifier, bool unmodifiedType, bool isRequired) => false;
        public bool GetPinnedType(bool elementType) => false;
        public bool GetPointerType(bool elementType) => false;
        public bool GetPrimitiveType(PrimitiveTypeCode typeCode) => false;
        public bool GetSZArrayType(bool elementType) => false;
    }
}
