// SPDX-License-Identifier: MIT
// SN51 collateral: our implementation of the interface Lium's collateral contract has on the Bittensor EVM.
// Providers ("miners") lock TAO per executor (a bytes16 UUID); they may reclaim it after a decision timeout
// unless the trustee denies the request; the trustee may slash, which burns min(amount, balance).
pragma solidity ^0.8.28;

contract Collateral {
    uint16 public immutable NETUID;
    address public immutable TRUSTEE;
    address public immutable BURN_ADDRESS;
    uint256 public immutable MIN_COLLATERAL_INCREASE;
    uint64 public immutable DECISION_TIMEOUT;

    struct Reclaim {
        bytes16 executorId;
        address miner;
        uint256 amount;
        uint64 expirationTime;
    }

    mapping(bytes16 => address) public executorToMiner;
    mapping(bytes16 => uint256) public collaterals;
    mapping(uint256 => Reclaim) public reclaims;
    mapping(bytes16 => uint256) public collateralUnderPendingReclaims;
    uint256 public nextReclaimId;

    event Deposit(bytes16 indexed executorId, address indexed miner, uint256 amount);
    event ReclaimProcessStarted(
        uint256 indexed reclaimRequestId,
        bytes16 indexed executorId,
        address indexed miner,
        uint256 amount,
        uint64 expirationTime,
        string url,
        bytes16 urlContentMd5Checksum
    );
    event Reclaimed(uint256 indexed reclaimRequestId, bytes16 indexed executorId, address indexed miner, uint256 amount);
    event Denied(uint256 indexed reclaimRequestId, string url, bytes16 urlContentMd5Checksum);
    event Slashed(bytes16 indexed executorId, address indexed miner, uint256 amount, string url, bytes16 urlContentMd5Checksum);

    error NotTrustee();
    error NotExecutorMiner();
    error InsufficientAmount();
    error NothingToReclaim();
    error ReclaimNotFound();
    error BeforeDenyTimeout();
    error PastDenyTimeout();
    error NothingToSlash();
    error TransferFailed();
    error InvalidConfig();

    modifier onlyTrustee() {
        if (msg.sender != TRUSTEE) revert NotTrustee();
        _;
    }

    constructor(uint16 netuid, address trustee, address burnAddress, uint256 minCollateralIncrease, uint64 decisionTimeout) {
        if (trustee == address(0) || minCollateralIncrease == 0 || decisionTimeout == 0) revert InvalidConfig();
        NETUID = netuid;
        TRUSTEE = trustee;
        BURN_ADDRESS = burnAddress;
        MIN_COLLATERAL_INCREASE = minCollateralIncrease;
        DECISION_TIMEOUT = decisionTimeout;
    }

    /// Lock msg.value for an executor; the first depositor of an executor becomes its miner.
    function deposit(bytes16 executorId) external payable {
        if (msg.value < MIN_COLLATERAL_INCREASE) revert InsufficientAmount();
        address miner = executorToMiner[executorId];
        if (miner == address(0)) {
            executorToMiner[executorId] = msg.sender;
        } else if (miner != msg.sender) {
            revert NotExecutorMiner();
        }
        collaterals[executorId] += msg.value;
        emit Deposit(executorId, msg.sender, msg.value);
    }

    /// Start reclaiming everything of an executor not already under a pending reclaim.
    function reclaimCollateral(bytes16 executorId, string calldata url, bytes16 urlContentMd5Checksum) external {
        if (executorToMiner[executorId] != msg.sender) revert NotExecutorMiner();
        uint256 balance = collaterals[executorId];
        uint256 pending = collateralUnderPendingReclaims[executorId];
        if (balance <= pending) revert NothingToReclaim();
        uint256 amount = balance - pending;
        uint64 expirationTime = uint64(block.timestamp) + DECISION_TIMEOUT;
        uint256 id = nextReclaimId++;
        reclaims[id] = Reclaim(executorId, msg.sender, amount, expirationTime);
        collateralUnderPendingReclaims[executorId] += amount;
        emit ReclaimProcessStarted(id, executorId, msg.sender, amount, expirationTime, url, urlContentMd5Checksum);
    }

    /// After the decision timeout, pay a reclaim out (capped at what a slash may have left).
    function finalizeReclaim(uint256 reclaimRequestId) external {
        Reclaim memory r = reclaims[reclaimRequestId];
        if (r.miner == address(0)) revert ReclaimNotFound();
        if (block.timestamp < r.expirationTime) revert BeforeDenyTimeout();
        delete reclaims[reclaimRequestId];
        collateralUnderPendingReclaims[r.executorId] -= r.amount;
        uint256 balance = collaterals[r.executorId];
        uint256 amount = r.amount < balance ? r.amount : balance;
        collaterals[r.executorId] = balance - amount;
        if (balance == amount) delete executorToMiner[r.executorId];
        emit Reclaimed(reclaimRequestId, r.executorId, r.miner, amount);
        if (amount > 0) {
            (bool ok, ) = payable(r.miner).call{value: amount}("");
            if (!ok) revert TransferFailed();
        }
    }

    /// The trustee refuses a pending reclaim before its timeout.
    function denyReclaimRequest(uint256 reclaimRequestId, string calldata url, bytes16 urlContentMd5Checksum)
        external
        onlyTrustee
    {
        Reclaim memory r = reclaims[reclaimRequestId];
        if (r.miner == address(0)) revert ReclaimNotFound();
        if (block.timestamp >= r.expirationTime) revert PastDenyTimeout();
        delete reclaims[reclaimRequestId];
        collateralUnderPendingReclaims[r.executorId] -= r.amount;
        emit Denied(reclaimRequestId, url, urlContentMd5Checksum);
    }

    /// The trustee burns min(slashAmount, balance) of an executor's collateral.
    function slashCollateral(bytes16 executorId, uint256 slashAmount, string calldata url, bytes16 urlContentMd5Checksum)
        external
        onlyTrustee
    {
        uint256 balance = collaterals[executorId];
        uint256 amount = slashAmount < balance ? slashAmount : balance;
        if (amount == 0) revert NothingToSlash();
        collaterals[executorId] = balance - amount;
        address miner = executorToMiner[executorId];
        emit Slashed(executorId, miner, amount, url, urlContentMd5Checksum);
        (bool ok, ) = payable(BURN_ADDRESS).call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
