// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SettableAggregator
/// @notice A Chainlink-style price feed whose answer a scenario sets. Each update starts a new
///         round and emits `NewRound` and `AnswerUpdated` exactly like an OCR aggregator does.
contract SettableAggregator {
  int256 private _answer;
  uint256 private _round;
  uint256 private _updatedAt;
  uint8 public immutable decimals;
  string public description;
  address public owner;

  mapping(uint256 => int256) private _answers;
  mapping(uint256 => uint256) private _timestamps;

  event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
  event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

  constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
    owner = msg.sender;
    decimals = decimals_;
    description = description_;
    _setAnswer(initialAnswer);
  }

  function setAnswer(int256 answer) external {
    require(msg.sender == owner, 'only owner');
    _setAnswer(answer);
  }

  function _setAnswer(int256 answer) internal {
    _round += 1;
    _answer = answer;
    _updatedAt = block.timestamp;
    _answers[_round] = answer;
    _timestamps[_round] = block.timestamp;
    emit NewRound(_round, msg.sender, block.timestamp);
    emit AnswerUpdated(answer, _round, block.timestamp);
  }

  function latestAnswer() external view returns (int256) {
    return _answer;
  }

  function latestTimestamp() external view returns (uint256) {
    return _updatedAt;
  }

  function latestRound() external view returns (uint256) {
    return _round;
  }

  function getAnswer(uint256 roundId) external view returns (int256) {
    return _answers[roundId];
  }

  function getTimestamp(uint256 roundId) external view returns (uint256) {
    return _timestamps[roundId];
  }

  function latestRoundData()
    external
    view
    returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
  {
    return (uint80(_round), _answer, _updatedAt, _updatedAt, uint80(_round));
  }
}
